"""Container entrypoint and AWS tooling (ECR, SageMaker, EC2): `python -m deploy`.

Not built yet; see the deploy issue. It packages `service` and `models` and never imports
their internals.
"""
