"""BentoML services: the HTTP surface of PAIS (entry service in service.gateway)."""
