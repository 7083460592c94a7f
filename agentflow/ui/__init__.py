"""Streamlit building blocks of the workbench (the only part of ``agentflow`` that imports
Streamlit).

Plain, browser-free logic the pages need and the tests check:

    graph      workflow document -> nodes/edges for streamlit-agraph, levels, legend
    runview    live events (stream_workflow) folded into the Run page's view model
    runner     a run on a background thread, recorded in the store
    tables     trace -> pandas DataFrame, Gantt timeline (Altair), run comparison
    debugview  step-by-step inspection: breakpoint choices, a paused run's state and its
               edit, checkpoints and state diffs, a fork compared with its parent
    diff       version diffs (line diff and a list of changes)
    forms      provider form fields derived from pydantic Config models
    editor     the Editor's buffers, annotations and conflict-aware save
    overview   workflows at a glance, source/queue usage, queue meters, ids
    seed       demo mode: offline examples seeded into an empty store
    theme      colours, shapes and icons per node type and status

Streamlit pieces: ``page`` (setup, sign-in gate, pickers), ``auth`` (sign-in), ``nav`` (the
sidebar's pages), ``render`` (errors, steps, results, trace, graph, node details), ``widgets``
(provider form inputs, connection checks, queue meters), ``debugpanel`` (breakpoints, the
paused-run panel, paused runs, time travel, fork vs parent).
"""
