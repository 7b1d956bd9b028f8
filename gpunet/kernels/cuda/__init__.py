"""The CUDA epoch kernel: its launcher and memory plans (:mod:`.launcher`, ``sgd_epoch.cu``), the scorer of a
stack in one launch (:mod:`.scorer`, ``evaluate.cu``), the self-check run on the user's GPU (:mod:`.check`) and
the verdicts of that check kept per GPU (:mod:`.verdicts`). The ``.cu`` sources are package data, compiled at
run time by NVRTC through CuPy."""
