"""Audio MAE (Audio-MAE): Kaldi log-mel spectrograms as one-channel images."""
