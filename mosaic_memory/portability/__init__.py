"""Portable memory: the export/import record format (``format``), its streaming reader/writer,
and import through the kinds' own services (``service``: ``export_records``, ``PortabilityService``)."""
