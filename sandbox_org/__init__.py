"""The sandbox org: a local emulator of the Salesforce REST API with the Asymbl ATS objects.

Public names: ``create_app(config)`` (the Flask app; ``app.extensions["sandbox"]`` is the
org), ``SandboxConfig``, ``serve()`` / ``start_in_thread()`` (``server``), and
``DEMO_CREDENTIALS`` (``seed``). This package imports nothing else of the gateway.
"""

from sandbox_org.app import create_app
from sandbox_org.seed import DEMO_CREDENTIALS
from sandbox_org.state import SandboxConfig

__all__ = ["DEMO_CREDENTIALS", "SandboxConfig", "create_app"]
