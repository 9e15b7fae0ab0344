"""Training and evaluation of the embedded tiny GAR model on synthetic scenes."""
