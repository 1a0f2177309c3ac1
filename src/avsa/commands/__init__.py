"""The command-line front-ends of ``avsa``: one module per sub-command, ``avsa.commands.<command>``.

Each defines ``add_arguments(parser)`` and ``run(args) -> int`` (the exit
status) and does nothing but parse its arguments, call the library function
of its stage and print what it returns; :mod:`avsa.cli` dispatches to them.
The two pipelines, ``avsa demo`` (:mod:`avsa.demo`) and ``avsa experiments``
(:mod:`avsa.experiments`), are library modules that chain the stages, and
keep their few options beside the pipeline they configure.
"""
