"""The contract's normal forms, one behaviour per test."""
from __future__ import annotations

from pyspark.sql import functions as F
from pyspark.testing import assertDataFrameEqual

from pipelines.normalize import (empty_to_null, is_script, norm_directory, norm_file, norm_host, norm_path, norm_uri)

DEFAULT_EXT = [".asp", ".aspx", ".asmx", ".asax", ".php", ".jsp", ".js", ".cfm", ".shtml"]


def check(spark, fn, pairs, out_type="string"):
    df = spark.createDataFrame([(i, a) for i, (a, _) in enumerate(pairs)], "i int, v string")
    expected = spark.createDataFrame([(i, b) for i, (_, b) in enumerate(pairs)], f"i int, out {out_type}")
    assertDataFrameEqual(df.select("i", fn(F.col("v")).alias("out")), expected)


def test_norm_host_trims_lowercases_and_cuts_the_fqdn(spark):
    check(spark, norm_host, [("WEB01", "web01"), ("  web02.contoso.local ", "web02"), ("Web03.", "web03"),
                             (".contoso", None), ("", None), ("   ", None), (None, None)])


def test_norm_path_percent_decodes_once_keeps_plus_and_turns_backslashes(spark):
    check(spark, norm_path, [("/uploads/sh%65ll.aspx", "/uploads/shell.aspx"), ("/a%252e.aspx", "/a%2e.aspx"),
                             ("/a+b.aspx", "/a+b.aspx"), ("/a%2Bb", "/a+b"), ("/up\\cmd.aspx", "/up/cmd.aspx"),
                             ("/bad%zz.aspx", "/bad%zz.aspx"), ("/100%", "/100%"), ("/caf%C3%A9", "/café")])


def test_norm_uri_collapses_slashes_trims_lowercases_and_leads_with_a_slash(spark):
    check(spark, norm_uri, [("//Uploads//Shell.ASPX", "/uploads/shell.aspx"), ("uploads/x.aspx", "/uploads/x.aspx"),
                            ("  /A.aspx ", "/a.aspx"), ("/uploads\\\\cmd.aspx", "/uploads/cmd.aspx"), ("/", "/")])


def test_norm_file_is_the_last_segment_of_norm_uri(spark):
    check(spark, norm_file, [("/Uploads/Shell.ASPX", "shell.aspx"), ("Shell.ASPX", "shell.aspx"),
                             ("/uploads/sh%65ll.aspx", "shell.aspx"), ("/dir/", ""), ("/a\\b.php", "b.php")])


def test_empty_values_are_null(spark):
    check(spark, empty_to_null, [("", None), ("-", None), ("  - ", None), ("  ", None), (None, None),
                                 ("--", "--"), (" x ", " x ")])


def test_a_script_is_a_name_ending_with_a_script_extension(spark):
    check(spark, lambda c: is_script(norm_file(c), DEFAULT_EXT),
          [("Shell.ASPX", True), ("notes.aspx.txt", False), ("x.php", True), ("style.css", False),
           ("app.js", True), ("page.shtml", True), ("aspx", False), (None, False)], "boolean")


def test_entity_directory_is_compared_with_forward_slashes_lowercased_without_trailing_slash(spark):
    check(spark, norm_directory, [("C:\\inetpub\\wwwroot\\Uploads\\", "c:/inetpub/wwwroot/uploads"),
                                  ("/var/www//", "/var/www"), (None, None)])


def test_norm_path_turns_a_percent_encoded_backslash_into_a_slash(spark):
    check(spark, norm_path, [("/uploads%5Ccmd.aspx", "/uploads/cmd.aspx"), ("/uploads%5ccmd.aspx", "/uploads/cmd.aspx")])


def test_norm_uri_collapses_slashes_that_were_percent_encoded(spark):
    check(spark, norm_uri, [("/%2F%2Fuploads/cmd.aspx", "/uploads/cmd.aspx"), ("/up%5C%5Ccmd.aspx", "/up/cmd.aspx")])
