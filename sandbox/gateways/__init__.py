"""Local gateways emulated from the deployable artifacts (CloudFormation, OpenAPI, APIM XML), one module each."""
