"""Running the model on the cameras' frames: dynamic batching and the inference worker thread.

- :mod:`crowdwatch.inference.batcher`: :class:`~crowdwatch.inference.batcher.Batcher`, which frames
  form a batch (one size, one frame per camera).
- :mod:`crowdwatch.inference.worker`: :class:`~crowdwatch.inference.worker.Worker`, the inference loop
  that takes frames from the readers and hands results to the sinks.
"""
