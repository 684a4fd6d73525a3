"""EKS workload identity: IRSA roles trusted for one service account, and EKS Pod Identity associations."""
