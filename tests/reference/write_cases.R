# write_cases(header, cases, path): a reference JSON file that reads one case per line,
#
#   {
#   "<header name>": <header>,
#   "cases": [
#   <case 1>,
#   ...
#   ]
#   }
#
# numbers with 15 significant digits (jsonlite's digits = NA), NA and NULL as null. Sourced by the make_*.R scripts
# of this folder (from the repository root).

write_cases <- function(header, cases, path) {
  line <- function(x) jsonlite::toJSON(x, digits = NA, auto_unbox = TRUE, na = "null", null = "null")
  head <- paste0("\"", names(header), "\": ", vapply(header, line, ""), ",")
  commas <- c(rep(",", length(cases) - 1), "")
  writeLines(c("{", head, "\"cases\": [", paste0(vapply(cases, line, ""), commas), "]", "}"), path)
}
