"""ModelGateway with IAM auth: SigV4 callers, no API key required, no API-key acknowledgements needed."""

from __future__ import annotations

from tests.support.gateway_stack import gateway_template


def test_iam_auth_makes_every_method_sigv4_and_drops_the_key_requirement(tmp_path):
    template = gateway_template(tmp_path)
    methods = template.find_resources("AWS::ApiGateway::Method")
    assert len(methods) == 4  # chat, embeddings, models, models/{id}
    for method in methods.values():
        assert method["Properties"]["AuthorizationType"] == "AWS_IAM"
        assert method["Properties"]["ApiKeyRequired"] is False
    template.resource_count_is("AWS::ApiGateway::UsagePlan", 0)
    template.resource_count_is("AWS::ApiGateway::ApiKey", 0)
