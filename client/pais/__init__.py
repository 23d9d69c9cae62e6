"""PAIS client SDK: typed sync and async clients for every PAIS endpoint, and resumable
batch jobs (`pais batch ...` on the command line, `pais.batch.run_batch` in Python).

    import pais

    with pais.Client("http://127.0.0.1:3000") as client:
        print(client.classify(["cat.jpg"])[0].top.label)

Depends on httpx only (boto3 with the `s3` extra, for s3:// inputs and outputs and
SageMaker endpoints); never on torch or bentoml.
"""

from ._version import __version__
from .client import AsyncAudioStream, AsyncClient, AudioStream, Client
from .errors import (
    APIError,
    AuthenticationError,
    BadRequestError,
    ClientError,
    NotFoundError,
    PaisConnectionError,
    PaisError,
    PaisTimeoutError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ResponseFormatError,
    ServerError,
    ServiceUnavailableError,
    UnsupportedMediaTypeError,
)
from .results import (
    Audio,
    Classification,
    Detection,
    Detections,
    Embedding,
    Image,
    Label,
    LabelSummary,
    ModelCard,
    Prediction,
    Recommendations,
    RecommendedItem,
    Translation,
    VideoAnalysis,
    VideoFrame,
)
from .retry import RetryPolicy

__all__ = [
    "APIError",
    "AsyncAudioStream",
    "AsyncClient",
    "Audio",
    "AudioStream",
    "AuthenticationError",
    "BadRequestError",
    "Classification",
    "Client",
    "ClientError",
    "Detection",
    "Detections",
    "Embedding",
    "Image",
    "Label",
    "LabelSummary",
    "ModelCard",
    "NotFoundError",
    "PaisConnectionError",
    "PaisError",
    "PaisTimeoutError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "Prediction",
    "RateLimitError",
    "Recommendations",
    "RecommendedItem",
    "ResponseFormatError",
    "RetryPolicy",
    "ServerError",
    "ServiceUnavailableError",
    "Translation",
    "UnsupportedMediaTypeError",
    "VideoAnalysis",
    "VideoFrame",
    "__version__",
]
