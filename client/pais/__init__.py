"""PAIS client SDK (import name `pais`). Not built yet; see the client SDK issue.

Until then, any HTTP client works: see the README's curl examples, or use
`bentoml.SyncHTTPClient`.
"""

__version__ = "0.0.0"
