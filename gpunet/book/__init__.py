"""What the book ships: its per-example network (:mod:`.reference`, every kernel's yardstick), its ``mnist_loader``
(:mod:`.mnist_loader`, also ``gpunet.mnist_loader``), its pair format (:mod:`.pairs`), chapter 1's :mod:`.baselines`;
chapter 3's rules for stopping and for eta (:mod:`.schedule`)."""
