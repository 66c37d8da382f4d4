"""Local processes for the embedded stack (`ats-gateway dev`) and the test suite."""

from ats_gateway.embedded.processes import ManagedProcess
from ats_gateway.embedded.redis import EmbeddedRedis, find_redis_server, free_port

__all__ = ["EmbeddedRedis", "ManagedProcess", "find_redis_server", "free_port"]
