"""Flax (Linen) models of the paper: deep autoencoders and the tanh RNN.

See ``mominit.models.autoencoder`` (CURVES, MNIST, FACES; layer structure for diagnostics) and
``mominit.models.rnn`` (the long-term dependency RNN).
"""
from mominit.models.autoencoder import (
    ACTIVATIONS, AUTOENCODER_INITS, AUTOENCODER_LOSSES, AUTOENCODER_OUTPUTS, AUTOENCODER_SIZES,
    DeepAutoencoder, OUTPUTS, autoencoder, autoencoder_from_sizes, autoencoder_loss_type,
    layer_inits,
)
from mominit.models.rnn import READOUTS, TanhRNN

__all__ = [
    "ACTIVATIONS", "AUTOENCODER_INITS", "AUTOENCODER_LOSSES", "AUTOENCODER_OUTPUTS",
    "AUTOENCODER_SIZES", "DeepAutoencoder", "OUTPUTS", "READOUTS", "TanhRNN", "autoencoder",
    "autoencoder_from_sizes", "autoencoder_loss_type", "layer_inits",
]
