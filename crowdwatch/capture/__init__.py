"""Cameras: opening a stream (probe + OpenCV) and the reader thread that turns it into frames.

- :mod:`crowdwatch.capture.base`: the exception tree, the ``Capture`` protocol, reader events and state.
- :mod:`crowdwatch.capture.probe`: a plain-socket RTSP ``OPTIONS`` probe that fails fast outside OpenCV.
- :mod:`crowdwatch.capture.opencv`: ``cv2.VideoCapture`` behind the protocol, serialized opens.
- :mod:`crowdwatch.capture.reader`: :class:`~crowdwatch.capture.reader.CameraReader`, one thread per camera.
"""
