"""Adapters from genlab's Monitor to other tools: a TensorBoard writer and a Lightning callback.
Each needs its optional extra (``pip install 'genlab[tensorboard]'``, ``'genlab[lightning]'``)."""
