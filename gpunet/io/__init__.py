"""The trust boundary: the only package that opens files or sockets or parses bytes from outside.

The file system rules (:mod:`.fs`: regular files only, memory and disk checks, atomic writes and their
temporaries, one writer per output), the stop signals held while a file is written (:mod:`.signals`), the
formats gpunet reads (:mod:`.idx`, :mod:`.book_pickle`, :mod:`.images`, :mod:`.model_files`, :mod:`.jsonl`),
downloads and checksums (:mod:`.download`, :mod:`.identity`), where the data is (:mod:`.find`) and the
programs gpunet talks to (:mod:`.peers`: git, a Dask scheduler). Each raises the user's error itself, one
line naming the file (:class:`~gpunet.errors.DataError`); what it returns is checked, so the rest of gpunet
trusts it.
"""
