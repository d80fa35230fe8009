"""``python -m carbon_kfp.pipelines.gcpc``: recompile the GCPC ops from the installed package."""

from carbon_kfp.pipelines.gcpc import write_ops

for path in write_ops():
    print(f"wrote {path}")
