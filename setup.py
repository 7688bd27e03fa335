from setuptools import find_packages, setup

SPARK = ["pyspark==4.2.0", "delta-spark==4.4.0"]

setup(
    name="shelltrace",
    version="0.1.0",
    description="Batch web-shell hunting over Sentinel exports in a Delta lake",
    packages=find_packages(include=["jobs", "jobs.*", "pipelines", "pipelines.*", "schemas", "schemas.*", "conf"]),
    package_data={"conf": ["*.yaml", "*.properties"]},
    python_requires=">=3.10",
    install_requires=[
        # Versions that work together: see ../shared/NOTES.md and README "Versions". Spark and Delta are the
        # `spark` extra: Databricks (and any cluster with its own Spark) must keep its runtime's pyspark.
        "great-expectations==1.24.1",
        "pandas>=2.2,<3",
        "pyarrow>=15",
        "pyyaml>=6",
    ],
    extras_require={
        # delta-spark 4.4.1's jar (io.delta:delta-spark_4.2_2.13:4.4.1) is not on Maven Central; 4.4.0 is,
        # and the Python API must match the jar.
        "spark": SPARK,
        "dev": SPARK + ["pytest>=8", "deltalake==1.6.6", "duckdb>=1.1"],
    },
    entry_points={"console_scripts": ["shelltrace=jobs.cli:main", "shelltrace-task=jobs.cli:task"]},
)
