"""Custom resource: the pgvector schema a Bedrock knowledge base needs in Aurora PostgreSQL."""
