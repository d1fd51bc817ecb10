"""PyTorch side of talkinghead: models, losses, data, meta-learning and fine-tuning."""
