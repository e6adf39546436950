-- cli/completion.lua: `planapi completion bash|zsh`, shell completion
-- scripts generated from the same tables as `ops`, `methods` and
-- `resources` (cli/help.lua), so a new operation completes as soon as the
-- library knows it. Both scripts share one candidate function written in
-- the shell language bash and zsh have in common (case, $#, positional
-- words); each shell's wrapper only collects the words and offers the
-- candidates its own way.
local args = require("planapi.cli.args")
local help = require("planapi.cli.help")
local rest = require("planapi.planfix_rest")
local xml = require("planapi.planfix_xml")
local planado_resources = require("planapi.planado.resources")

local M = {}

-- Options that take a value: the word after them is no command word.
local function value_options()
  local out = {}
  for name, kind in pairs(args.OPTIONS) do
    if kind == "value" then out[#out + 1] = name end
  end
  table.sort(out)
  return out
end

local function all_options()
  local out = {}
  for name in pairs(args.OPTIONS) do out[#out + 1] = name end
  table.sort(out)
  return out
end

-- A shell `case` over names: name) _planapi_reply="words" ;;
local function case_lines(names, words_of)
  local out = {}
  for _, name in ipairs(names) do
    local words = words_of(name)
    if words and #words > 0 then
      out[#out + 1] = ('    %s) _planapi_reply="%s" ;;'):format(name, table.concat(words, " "))
    end
  end
  return table.concat(out, "\n")
end

local function rest_param_words(id)
  local words = {}
  for i, p in ipairs(help.rest_params(rest.operation(id))) do words[i] = p.name .. "=" end
  return words
end

local function field_words(name)
  local words = {}
  for i, f in ipairs(help.planado_fields(name) or {}) do words[i] = f .. "=" end
  return words
end

-- The shell both scripts share: the tables as variables and case
-- functions, and _planapi_candidates N WORD1 WORD2 WORD3 (how many command
-- words come before the one being completed, and the first three), which
-- sets _planapi_reply (space-separated) and _planapi_nospace (1 for "key=").
local function shared()
  local resources = planado_resources.names()
  return table.concat({
    '_planapi_options="' .. table.concat(all_options(), " ") .. '"',
    '_planapi_rest_ops="' .. table.concat(rest.operations(), " ") .. '"',
    '_planapi_xml_methods="' .. table.concat(xml.methods(), " ") .. '"',
    '_planapi_planado_resources="' .. table.concat(resources, " ") .. '"',
    "_planapi_rest_params() {\n  case \"$1\" in\n" .. case_lines(rest.operations(), rest_param_words)
      .. "\n  esac\n}",
    "_planapi_planado_actions() {\n  case \"$1\" in\n" .. case_lines(resources, help.planado_actions)
      .. "\n  esac\n}",
    "_planapi_planado_fields() {\n  case \"$1\" in\n" .. case_lines(resources, field_words) .. "\n  esac\n}",
    [=[
_planapi_candidates() {
  _planapi_reply="" _planapi_nospace=""
  case "$2" in
    "") _planapi_reply="planfix-rest planfix-xml planado config receive sandbox completion help" ;;
    planfix-rest)
      if [ "$1" -eq 1 ]; then _planapi_reply="ops help fields $_planapi_rest_ops"
      elif [ "$1" -eq 2 ] && [ "$3" = help ]; then _planapi_reply="$_planapi_rest_ops"
      elif [ "$1" -eq 2 ] && [ "$3" = fields ]; then _planapi_reply="task contact project user"
      elif [ "$3" != ops ] && [ "$3" != help ] && [ "$3" != fields ]; then _planapi_rest_params "$3"; _planapi_nospace=1
      fi ;;
    planfix-xml)
      if [ "$1" -eq 1 ]; then _planapi_reply="methods help $_planapi_xml_methods"
      elif [ "$1" -eq 2 ] && [ "$3" = help ]; then _planapi_reply="$_planapi_xml_methods"
      fi ;;
    planado)
      if [ "$1" -eq 1 ]; then _planapi_reply="resources help call $_planapi_planado_resources"
      elif [ "$1" -eq 2 ] && [ "$3" = help ]; then _planapi_reply="$_planapi_planado_resources"
      elif [ "$1" -eq 2 ] && [ "$3" = call ]; then _planapi_reply="GET POST PATCH PUT DELETE"
      elif [ "$1" -eq 2 ]; then _planapi_planado_actions "$3"
      elif [ "$4" = create ] || { [ "$1" -ge 4 ] && { [ "$4" = update ] || [ "$4" = upsert ]; }; }; then
        _planapi_planado_fields "$3"; _planapi_nospace=1
      fi ;;
    config) [ "$1" -eq 1 ] && _planapi_reply="check" ;;
    receive) [ "$1" -eq 1 ] && _planapi_reply="planfix planado" ;;
    sandbox) [ "$1" -eq 1 ] && _planapi_reply="start stop status" ;;
    completion) [ "$1" -eq 1 ] && _planapi_reply="bash zsh" ;;
  esac
  return 0
}

# _planapi_complete WORD...: the words typed after `planapi`, before the one
# being completed. Options, their values and key=value are no command words.
_planapi_complete() {
  _planapi_n=0 _planapi_w1="" _planapi_w2="" _planapi_w3="" _planapi_skip=""
  for _planapi_w in "$@"; do
    if [ -n "$_planapi_skip" ]; then _planapi_skip=""; continue; fi
    case "$_planapi_w" in
      VALUE_OPTIONS) _planapi_skip=1 ;;
      -*|*=*|@*) ;;
      *) _planapi_n=$((_planapi_n + 1))
        case "$_planapi_n" in
          1) _planapi_w1="$_planapi_w" ;;
          2) _planapi_w2="$_planapi_w" ;;
          3) _planapi_w3="$_planapi_w" ;;
        esac ;;
    esac
  done
  _planapi_candidates "$_planapi_n" "$_planapi_w1" "$_planapi_w2" "$_planapi_w3"
}]=],
  }, "\n") .. "\n"
end

-- `case` patterns of the options that take a value.
local function value_pattern()
  return table.concat(value_options(), "|")
end

--- The bash script: `source <(planapi completion bash)`.
function M.bash()
  local script = ("# planapi completion for bash, generated by `planapi completion bash` from planapi's tables.\n"
    .. "#   source <(planapi completion bash)   (or save it as ~/.local/share/bash-completion/completions/planapi)\n"
    .. shared() .. [=[
_planapi() {
  # The words from COMP_LINE split on blanks: bash's own COMP_WORDS splits
  # key=value and shm:FILE at = and :.
  local line="${COMP_LINE:0:COMP_POINT}" cur=""
  local -a typed
  read -r -a typed <<< "$line"
  [[ "$line" == *[[:blank:]] ]] || { cur="${typed[${#typed[@]}-1]}"; unset 'typed[${#typed[@]}-1]'; }
  COMPREPLY=()
  case "${typed[${#typed[@]}-1]}" in
    --resume|--output) COMPREPLY=( $(compgen -f -- "$cur") ); return 0 ;;
    --format) COMPREPLY=( $(compgen -W "json jsonl table" -- "$cur") ); return 0 ;;
    VALUE_OPTIONS) return 0 ;;
  esac
  if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "$_planapi_options" -- "$cur") ); return 0; fi
  [[ "$cur" == *[=:@]* ]] && return 0
  _planapi_complete "${typed[@]:1}"
  COMPREPLY=( $(compgen -W "$_planapi_reply" -- "$cur") )
  [[ -n "$_planapi_nospace" ]] && compopt -o nospace 2>/dev/null
  return 0
}
complete -F _planapi planapi
]=])
  return (script:gsub("VALUE_OPTIONS", value_pattern()))
end

--- The zsh script: save it as _planapi in a folder of $fpath (or source it after compinit).
function M.zsh()
  local script = ("#compdef planapi\n"
    .. "# planapi completion for zsh, generated by `planapi completion zsh` from planapi's tables.\n"
    .. "#   planapi completion zsh > \"${fpath[1]}/_planapi\"   (or source it after compinit)\n"
    .. shared() .. [=[
_planapi() {
  local cur="${words[CURRENT]}" prev="${words[CURRENT-1]}"
  case "$prev" in
    --resume|--output) _files; return ;;
    --format) compadd -- json jsonl table; return ;;
    VALUE_OPTIONS) return ;;
  esac
  if [[ "$cur" == -* ]]; then compadd -- ${=_planapi_options}; return; fi
  [[ "$cur" == *[=:@]* ]] && return
  _planapi_complete "${(@)words[2,CURRENT-1]}"
  if [[ -n "$_planapi_nospace" ]]; then compadd -S '' -- ${=_planapi_reply}
  else compadd -- ${=_planapi_reply}; fi
}
# Autoloaded from $fpath: this is the first completion, run it; sourced: register it.
if [[ "${funcstack[1]}" == _planapi ]]; then _planapi "$@"
elif (( $+functions[compdef] )); then compdef _planapi planapi; fi
]=])
  return (script:gsub("VALUE_OPTIONS", value_pattern()))
end

return M
