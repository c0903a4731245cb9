"""Pure torch ``nn.Module`` building blocks used by the scikit-learn wrappers."""
