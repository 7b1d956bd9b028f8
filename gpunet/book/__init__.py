"""What the book ships for its readers: its own per-example network (:mod:`.reference`, the yardstick every
kernel is tested against), its ``mnist_loader`` (:mod:`.mnist_loader`, also ``gpunet.mnist_loader``), its
list-of-pairs data format (:mod:`.pairs`) and chapter 1's baselines (:mod:`.baselines`)."""
