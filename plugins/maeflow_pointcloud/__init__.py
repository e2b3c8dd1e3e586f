"""Point-cloud MAE (Point-MAE): FPS + kNN groups, mini-PointNet tokens, Chamfer loss."""
