"""The constructs genai-stack offers for reuse in an app of your own, and the settings types they take.

Everything here is public API (semantic versioning applies to it); the rest of the package is the
implementation of the built-in profiles and may change in any release. Each construct's docstring
has an example, and docs/examples/team_app.py is a runnable app that uses several of them (a test
synthesizes it).

- `ProfileStacks` / `GenAiStage`: every stack of a profile, under your App or in a CDK Pipelines
  stage; `stack_prefix` and `env` deploy one profile as several environments.
- `Guardrail` (`GuardrailSettings`): a Bedrock guardrail and its published version.
- `CostControls` (`BudgetAlert`): a tag-scoped budget and cost anomaly monitor.
- `AlarmTopic`: an encrypted SNS topic the AWS services that send alarms and events may publish to.
- `ApplicationInferenceProfile`: a tagged Bedrock application inference profile (cost attribution).
- `PythonFunction`: a Lambda function from a code folder, with its own log group and least privilege.

Props are keyword-only and checked when the construct is created: a value a profile would refuse is
a `PropsError` (a ValueError naming the construct, the prop and what is allowed), and a dict where a
settings object is expected is a TypeError.
"""

from __future__ import annotations

from genai_stack.components.alarm_topic import AlarmTopic
from genai_stack.components.application_inference_profile import ApplicationInferenceProfile
from genai_stack.components.cost_controls import BudgetAlert, CostControls
from genai_stack.components.guardrail import Guardrail
from genai_stack.components.python_function import PythonFunction
from genai_stack.config import Guardrail as GuardrailSettings
from genai_stack.props import PropsError
from genai_stack.stage import FEATURE_FLAGS, GenAiStage, ProfileStacks

__all__ = [
    "FEATURE_FLAGS",
    "AlarmTopic",
    "ApplicationInferenceProfile",
    "BudgetAlert",
    "CostControls",
    "GenAiStage",
    "Guardrail",
    "GuardrailSettings",
    "ProfileStacks",
    "PropsError",
    "PythonFunction",
]
