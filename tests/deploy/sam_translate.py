"""Prints the CloudFormation JSON that the SAM transform makes of a template, offline.

Run with .venv-sam's Python (it holds aws-sam-translator):
    .venv-sam/bin/python tests/deploy/sam_translate.py template.yaml
Needs a region in the environment (any; AWS_DEFAULT_REGION=us-east-1) and no credentials.
"""

import json
import sys

from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse


class _NoManagedPolicyLookup:
    """The template names managed policies by ARN only, so IAM is never asked."""

    def load(self) -> dict:
        return {}


def main(path: str) -> None:
    with open(path, encoding="utf-8") as file:
        template = yaml_parse(file.read())

    # `sam build`/`sam package` replace a local CodeUri with an S3 location before the
    # transform runs; stand in for that so the transform accepts the template.
    for resource in template.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Function":
            resource["Properties"]["CodeUri"] = "s3://placeholder-bucket/placeholder-key"

    translated = transform(template, {}, _NoManagedPolicyLookup())
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
