"""Video MAE (VideoMAE): tubelet tokens, tube masking, spatiotemporal MAE."""
