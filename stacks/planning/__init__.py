"""Planning without deploying: the cost model (`cost`), the approach advisor (`advisor`) and the
schedules they count hours with (`schedules`). They read profiles, synthesized templates and the data
tables, and build no construct: the CLI and the docs use them, the stacks do not."""
