"""Take-home exports: an experiment as the plain Keras script or notebook a learner would write.

`keras_code` turns spec objects into Keras constructor calls (one entry per spec type);
`notebook` lays out the whole program (data, split, model, compile, fit, evaluate) as a
script or an nbformat 4 notebook. Pure text generation: no TensorFlow is imported.
"""
