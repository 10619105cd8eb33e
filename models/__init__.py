"""The model, the data and the shared trainer. Plain PyTorch: never imports ray or mlflow."""
