"""EC2: one GPU instance running the PAIS image from the latest Deep Learning AMI."""
