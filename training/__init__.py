"""What runs inside the SageMaker training container (no CDK or boto3 imports here)."""
