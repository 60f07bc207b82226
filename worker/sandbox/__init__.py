"""Local Nmbrs sandbox: an aiohttp SOAP server answering the v3 calls nmbrs-sync uses from a dataset."""
