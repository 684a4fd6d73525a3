"""What authgate's runtime tells operators: decision and key-set metrics as CloudWatch EMF and Prometheus text."""
