from mosaic_memory.api.app import create_app

__all__ = ["create_app"]
