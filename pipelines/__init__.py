"""Pure transformations: DataFrame in, DataFrame out, chainable with df.transform(...). No reads, writes or sessions."""
