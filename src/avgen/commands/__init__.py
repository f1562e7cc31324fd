"""The `avgen` subcommands, one module each: `configure(parser)` adds its arguments, `run(args)` does the work
through the library (avgen.pipelines, avgen.training, avgen.world) and returns the exit code."""
