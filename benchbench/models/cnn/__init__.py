"""Convolutional baselines: keras.applications' ImageNet networks and the CIFAR ResNets of He et al. 2016."""

from benchbench.models.cnn import cifar_resnet, model, space  # noqa: F401  (registers the variants and the space)
