"""Preloaded by the multiprocessing fork servers kb starts (``set_forkserver_preload``): the
fork server then dies with the kb process that started it (see kb.lifeline). Without this a
killed kb leaves it running for good: each worker it forked holds the pipe the fork server
watches for its parent's end, and waits on a parent that never goes."""

from kb.lifeline import die_with_parent

die_with_parent()
