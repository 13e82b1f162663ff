"""Knowledge base ingestion: start Bedrock ingestion jobs on a schedule and when documents change."""
