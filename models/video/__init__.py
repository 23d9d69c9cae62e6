"""Video analysis: container checks (`header`, no OpenCV), frame sampling (`frames`,
OpenCV/FFmpeg) and the per-label summary of analysed frames (`summary`).

The models that look at the frames are the image runtimes (detection, classification);
this package only decides which frames they see and what the answer says about them.
"""

DEFAULT_SAMPLE_FPS = 1.0
MAX_SAMPLE_FPS = 30.0
TASKS = ("detect", "classify")
