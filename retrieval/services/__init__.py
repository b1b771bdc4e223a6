"""Writes for knowledge bases, one module per job; import a name from the module that defines it.

- `knowledge_bases`: create, delete, switch the embedding model;
- `documents`: documents in (file, text, URL), replaced, deleted, retried; their tasks queued;
- `ingestion`: load, chunk and embed documents and store their chunks;
- `indexing`: the index folder of a knowledge base and the sync that writes new index versions;
- `site_import`: importing a whole site or sitemap.
"""
