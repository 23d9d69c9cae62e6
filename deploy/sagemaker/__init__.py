"""SageMaker: endpoints (real-time, async, serverless), autoscaling, invocations, Batch
Transform, status and teardown."""
