"""AWS tooling for PAIS (`python -m deploy`): ECR and S3 (push), SageMaker real-time, async,
serverless and Batch Transform, EC2 GPU instances, autoscaling, status, logs, teardown,
cost. It packages `service` and `models` (the image and the model store) and never
imports them. The container entrypoint (`python -m deploy.entrypoint serve`) is separate.
"""
