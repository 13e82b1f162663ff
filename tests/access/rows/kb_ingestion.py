"""Knowledge base ingestion (lambdas/kb_ingestion): StartIngestionJob and ListIngestionJobs
(logic.py start_ingestion / latest_job_failed) for each knowledge base of KNOWLEDGE_BASES.

Both are authorized on the knowledge base: bedrock:StartIngestionJob, bedrock:ListIngestionJobs,
resource type knowledge-base, arn:${Partition}:bedrock:${Region}:${Account}:knowledge-base/${KnowledgeBaseId}
(Service Authorization Reference, Amazon Bedrock:
https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonbedrock.html).
A knowledge base on Aurora is woken first (logic.py wake_database): rds-data:ExecuteStatement on the
cluster and the secret it names (rows/pgvector_schema.py cites the Data API pages).
"""

from __future__ import annotations

import json

from tests.access.deployment import Deployment, Function
from tests.access.rows import Call
from tests.access.rows.pgvector_schema import secret_rows

PACKAGE = "kb_ingestion"
HANDLERS = ("lambdas.kb_ingestion.handler.on_event",)
APIS = frozenset(
    {"bedrock-agent.StartIngestionJob", "bedrock-agent.ListIngestionJobs", "rds-data.ExecuteStatement"}
)


def rows(function: Function, deployment: Deployment) -> list[Call]:
    result = []
    for target in json.loads(function.environment["KNOWLEDGE_BASES"]):
        arn = deployment.arn("bedrock", f"knowledge-base/{target['knowledge_base_id']}")
        result += [
            Call(
                "bedrock:StartIngestionJob",
                arn,
                f"ingest {target['name']} (logic.py start_ingestion)",
                api="bedrock-agent.StartIngestionJob",
            ),
            Call(
                "bedrock:ListIngestionJobs",
                arn,
                f"check {target['name']} (logic.py latest_job_failed)",
                api="bedrock-agent.ListIngestionJobs",
            ),
        ]
        database = target.get("database")
        if database:
            # logic.py wake_database: `SELECT 1` through the Data API until a paused cluster answers.
            result += [
                Call(
                    "rds-data:ExecuteStatement",
                    database["cluster_arn"],
                    "logic.py wake_database",
                    api="rds-data.ExecuteStatement",
                ),
                *secret_rows(
                    deployment,
                    database["secret_arn"],
                    "the Data API reads the secret as the caller",
                    "rds-data.ExecuteStatement",
                ),
            ]
    result.append(
        Call(
            "bedrock:StartIngestionJob",
            deployment.arn("bedrock", "knowledge-base/ANOTHERKB1"),
            "another knowledge base is refused",
            expect="deny",
        )
    )
    return result
