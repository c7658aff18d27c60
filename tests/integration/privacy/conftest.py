from tests.integration.engine.conftest import shop

__all__ = ["shop"]
