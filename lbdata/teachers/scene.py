"""The scene teacher: writes Look-Back traces from the synthetic source's scene facts, offline.

For each problem a *plan* is made from ``problem.meta["scene"]``: the values to read off the figure
(each with the visual evidence that pins it down and the plausible ways to misread it) and the
calculation that turns them into the answer. The plan is then written out in the requested shape:

- ``semantic_back`` — the first think sets up the task and reads the figure; ``<back>`` re-examines
  the element the next step depends on, with concrete evidence; the second think finishes;
- ``solution_back`` — the first think reaches a candidate ("So the answer is X."); ``<back>`` checks
  every value against the figure; the second think confirms or corrects;
- ``plain`` — one think and the answer.

A share of the back traces (``misread_rate``, decided by the request seed) misread one value on the
first pass; the back catches it and the final answer is still the gold one. Wording is drawn from
``PHRASES`` by the seed; changing any phrase changes ``prompt_hash`` and so every trace id.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from functools import lru_cache
from typing import Any

from lbdata.errors import TeacherError
from lbdata.hashing import content_hash
from lbdata.records import Problem, TeacherInfo, Usage, parse_variant
from lbdata.sources.synthetic.common import fmt_degrees, fmt_number, fmt_sqrt
from lbdata.teachers.base import Teacher, TeacherResponse, TraceRequest

VERSION = "scene-teacher-1"

PHRASES: dict[str, list[str]] = {
    # ---- shared slots
    "open": [
        "Let me work through this step by step.",
        "First, I need to see what the figure shows.",
        "I'll start by pulling the needed values out of the image.",
        "To solve this I need a few values from the picture.",
        "Let me work out what is being asked and then read the figure.",
        "Okay, I should first identify the relevant parts of the image.",
        "Let me study the figure carefully before calculating anything.",
    ],
    "bridge": [
        "The next step depends on {name}, so I want to be sure of that value before using it.",
        "Everything after this hinges on {name}, so it is worth checking that reading first.",
        "Before combining anything, I should make certain that {name} was read correctly.",
        "Since the calculation uses {name}, let me confirm it in the figure before going on.",
        "I will rely on {name} in the next step, so I should double-check it against the image.",
        "A mistake in {name} would carry through the whole calculation, so I will verify it now.",
    ],
    "back_open": [
        "Looking at the image again,",
        "Going back to the figure,",
        "Re-examining the picture,",
        "Checking the figure once more,",
        "Returning to the image,",
        "Taking a closer look at the figure,",
    ],
    "confirm": [
        ", so {shown} is right.",
        ", which confirms {shown}.",
        ", so the reading of {shown} holds.",
        "; {shown} stands.",
        ", so {shown} is correct.",
        ", so I can keep {shown}.",
    ],
    "correct": [
        ", so it is {shown}, not the {wrong} I wrote above.",
        ". I misread it earlier: the value is {shown}, not {wrong}.",
        ", which means my {wrong} was wrong; the correct value is {shown}.",
        ". That is {shown}, so the {wrong} I used was a misreading.",
        ", so the value is actually {shown} rather than {wrong}.",
    ],
    "continue": [
        "With {name} confirmed at {shown}, I can finish.",
        "So {name} is {shown}, and I can carry on.",
        "Using {shown} for {name}, the rest follows.",
        "Now, with {shown} for {name}, the calculation is straightforward.",
        "Good, {name} is {shown}; now I combine the values.",
    ],
    "continue_fixed": [
        "With the corrected value of {shown} for {name}, I continue.",
        "Using {shown} for {name} instead of {wrong}, I redo the step.",
        "So {name} is really {shown}, not {wrong}; continuing with that.",
        "Now I use the right value, {shown}, for {name}.",
        "Replacing {wrong} by {shown} for {name}, I continue.",
    ],
    "conclude": [
        "So the answer is {answer}.",
        "Therefore, the answer is {answer}.",
        "That makes the answer {answer}.",
        "So the final answer is {answer}.",
        "Hence the answer is {answer}.",
    ],
    "candidate": [
        "So the answer is {answer}.",
        "Therefore, the answer is {answer}.",
        "This means the answer is {answer}.",
        "So my answer is {answer}.",
        "So the answer should be {answer}.",
    ],
    "verify_open": [
        "Let me verify each value against the image.",
        "Now I check every number I used against the figure.",
        "Verifying against the picture, element by element.",
        "I will go back to the figure and confirm each reading.",
        "Checking my readings in the image one at a time.",
        "Let me compare each value I used with the figure itself.",
    ],
    "check_ok": [
        ", matching my reading.",
        ", as I used.",
        ", which agrees with my work.",
        ", consistent with what I read.",
        ", exactly as I had it.",
    ],
    "check_bad": [
        ", but I used {wrong}.",
        ", not {wrong} as I wrote above.",
        ", so my {wrong} was a misreading.",
        ", which is not the {wrong} I used.",
        ", so {wrong} was wrong.",
    ],
    "verdict_ok": [
        "Every value I used agrees with the figure.",
        "All the readings check out against the picture.",
        "Nothing in the figure contradicts the calculation.",
        "The figure confirms each number in my work.",
        "So the image supports every step of the calculation.",
    ],
    "verdict_bad": [
        "So one of my readings was wrong, and the result must be redone.",
        "That misreading changes the result.",
        "The calculation has to be repeated with {shown} for {name}.",
        "So the candidate {candidate} rests on a wrong value.",
        "This error means {candidate} cannot be right.",
    ],
    "rethink_ok": [
        "The verification agrees with my work, so {answer} stands.",
        "Since every reading was confirmed, the result {answer} is right.",
        "The check found no error, so I keep {answer}.",
        "Everything matches the figure, so {answer} is confirmed.",
        "Nothing needs to change; the result remains {answer}.",
    ],
    "rethink_fix": [
        "I redo the work with {shown} for {name} instead of {wrong}.",
        "Now I use the corrected value {shown} for {name}.",
        "I use {shown} for {name}, as the figure actually shows.",
        "Recomputing with the right value of {name}, {shown}.",
        "I repeat the calculation with {name} equal to {shown}.",
    ],
    "choice": [
        "That value, {value}, is option ({letter}).",
        "Among the choices, {value} is ({letter}).",
        "This matches choice ({letter}), which is {value}.",
        "Option ({letter}) is {value}, the value I found.",
        "The option equal to {value} is ({letter}).",
    ],
    # ---- bar charts
    "bar.read": [
        "The {label} bar reaches {shown}.",
        "{label} comes to {shown}.",
        "The bar for {label} stops at {shown}.",
        "Reading {label} off the chart gives {shown}.",
        "For {label} I read a value of {shown}.",
        "{label} sits at {shown}.",
    ],
    "bar.evidence": [
        "the {top} of the {colour} {label} bar lines up exactly with the {shown} gridline",
        "the {label} bar ends {gridlines} {away} from zero, and with gridlines every {step} that is {shown}",
        "following the {top} of the {label} bar across to the axis lands on the tick marked {shown}",
        "the {colour} bar for {label} stops level with the {shown} line on the value axis",
        "the {label} bar meets the gridline labelled {shown}",
    ],
    "bar.evidence_printed": [
        "the number printed at the {top} of the {label} bar is {shown}, and the bar ends on the {shown} gridline",
        "the {colour} {label} bar carries the label {shown} and its {top} touches the {shown} gridline",
        "the value written by the {label} bar reads {shown}, level with the {shown} tick on the axis",
        "both the printed {shown} on the {label} bar and the gridline at its {top} say {shown}",
    ],
    "bar.goal.difference": [
        "The question asks how much larger {a} is than {b}, so I need both bar values.",
        "I need the values of the {a} and {b} bars and then their difference.",
        "To compare {a} with {b}, I will read both bars and subtract.",
        "This is a difference of two bars: {a} minus {b}.",
    ],
    "bar.goal.sum": [
        "I need the bars for {names} and then their total.",
        "The task is to read {names} from the chart and add them.",
        "I will read the bars {names} and sum them.",
        "Adding {names} requires reading each of those bars.",
    ],
    "bar.goal.range": [
        "I need the largest and the smallest bar, so I will read every bar.",
        "To find the spread I must read all the bars and pick the extremes.",
        "The task needs the highest and the lowest value in the chart.",
        "I will read each bar, then take the biggest minus the smallest.",
    ],
    "bar.goal.total": [
        "I need every bar's value and then their sum.",
        "The task is to read all the bars and add them up.",
        "I will read each bar in turn and total them.",
        "Adding up the chart means reading every bar first.",
    ],
    "bar.work.difference": [
        "Subtracting, {va} - {vb} = {result}.",
        "The difference is {va} - {vb} = {result}.",
        "{a} exceeds {b} by {va} - {vb} = {result}.",
        "Taking {vb} away from {va} leaves {result}.",
    ],
    "bar.work.sum": [
        "Adding them, {terms} = {result}.",
        "The total is {terms} = {result}.",
        "Together that is {terms} = {result}.",
        "Summing gives {terms} = {result}.",
    ],
    "bar.work.range": [
        "The largest value is {vmax} ({lmax}) and the smallest is {vmin} ({lmin}), so {vmax} - {vmin} = {result}.",
        "{lmax} is highest at {vmax} and {lmin} lowest at {vmin}; the gap is {vmax} - {vmin} = {result}.",
        "The extremes are {lmax} with {vmax} and {lmin} with {vmin}, giving {vmax} - {vmin} = {result}.",
        "Biggest minus smallest: {vmax} - {vmin} = {result}.",
    ],
    # ---- geometry
    "geo.side.read": [
        "Side {side} is labelled {shown}.",
        "The label on {side} says {shown}.",
        "{side} has length {shown}.",
        "The figure marks {side} as {shown}.",
        "The length of {side} is given as {shown}.",
    ],
    "geo.side.evidence": [
        "the number written beside side {side}, between vertices {p} and {q}, is {shown}",
        "next to the segment joining {p} and {q} the label reads {shown}",
        "the edge from {p} to {q} carries the label {shown}",
        "the label at the middle of side {side} shows {shown}",
        "the length marked along {side}, from {p} to {q}, is {shown}",
    ],
    "geo.angle.read": [
        "The angle at {vertex} is marked {shown}.",
        "At vertex {vertex} the figure shows {shown}.",
        "Angle {vertex} is labelled {shown}.",
        "The arc at {vertex} carries {shown}.",
        "The marked angle at {vertex} is {shown}.",
    ],
    "geo.angle.evidence": [
        "the arc drawn at vertex {vertex} is labelled {shown}",
        "inside the corner at {vertex}, next to the small arc, the label reads {shown}",
        "the angle mark at {vertex} shows {shown}",
        "the number inside the angle at {vertex} is {shown}",
    ],
    "geo.goal.hypotenuse": [
        "Triangle {tri} has a right angle at {r}, so {h} is the hypotenuse and I need both legs.",
        "The square mark at {r} shows a right angle; {h} lies opposite it, so the Pythagorean theorem applies.",
        "Since the angle at {r} is right, {h} is the hypotenuse and the two legs meet at {r}.",
        "The right angle is at {r}, so I need the legs {l1} and {l2} to get {h}.",
    ],
    "geo.goal.leg": [
        "The right angle is at {r}, so {h} is the hypotenuse and {x} is a leg.",
        "With the right-angle mark at {r}, the side {h} opposite it is the hypotenuse; I need it and {l1}.",
        "Triangle {tri} is right-angled at {r}, so {x}^2 = {h}^2 - {l1}^2 by Pythagoras.",
        "The unknown {x} is a leg of the right triangle, since the right angle sits at {r}.",
    ],
    "geo.goal.right_area": [
        "The legs of the right triangle meet at {r}; the area is half their product.",
        "The right angle at {r} means the two sides meeting there are base and height.",
        "For a right triangle the area is one half of leg times leg, and the legs meet at {r}.",
        "The area needs the two legs {l1} and {l2}, which form the right angle at {r}.",
    ],
    "geo.goal.perimeter": [
        "The perimeter is the sum of the three labelled sides.",
        "I need all three side lengths of triangle {tri} and then their sum.",
        "Each side of {tri} is labelled, so I read them and add.",
        "Adding the three sides of triangle {tri} gives the perimeter.",
    ],
    "geo.goal.rect_area": [
        "Rectangle {tri} has opposite sides equal, so the two labelled sides give its area.",
        "The area of a rectangle is width times height; both are labelled.",
        "I need the two labelled sides of {tri}, which are adjacent, and multiply them.",
        "For rectangle {tri} the area is the product of two adjacent sides.",
    ],
    "geo.goal.rect_perimeter": [
        "Rectangle {tri} has opposite sides equal, so two labelled sides fix the perimeter.",
        "The perimeter of a rectangle is twice the sum of width and height.",
        "I need the two labelled adjacent sides of {tri}; each appears twice around the boundary.",
        "For rectangle {tri}, the perimeter is 2 times (width + height).",
    ],
    "geo.goal.missing_angle": [
        "Two angles of triangle {tri} are marked, and the angles of a triangle add up to 180 degrees.",
        "The angle at {x} is unknown; the other two are labelled and the angle sum is 180 degrees.",
        "I need the two marked angles of {tri}, then subtract them from 180 degrees.",
        "The third angle of a triangle is 180 degrees minus the other two, so I read the marked ones.",
    ],
    # ---- counting
    "count.read": [
        "I count {shown} {cat}.",
        "There are {shown} {cat}.",
        "Counting the {cat_pl}, I get {shown}.",
        "The picture has {shown} {cat}.",
        "I see {shown} {cat}.",
    ],
    "count.evidence": [
        "the {cat_pl} are at {places}, which makes {shown}",
        "I find {cat_pl} at {places}: {shown} in all",
        "the {cat_pl} sit at {places}, {shown} of them",
        "pointing at each {cat_one} in turn gives {places}, {shown} altogether",
    ],
    "count.evidence_one": [
        "there is exactly 1 {cat_one}, at {places}",
        "the only {cat_one} in the image is at {places}, a count of 1",
        "a single {cat_one} appears, at {places}, so the count is 1",
        "1 {cat_one} is drawn, at {places}, and no other",
    ],
    "count.evidence_zero": [
        "there is no {cat_one} anywhere in the picture, a count of 0",
        "none of the shapes is a {cat_one}, which makes 0",
        "the image contains zero {cat_pl}",
        "checking each shape in turn, none is a {cat_one}, so there are 0 {cat_pl}",
    ],
    "count.evidence_rows": [
        "row by row from the top the picture holds {rows} objects, {shown} in total",
        "counting the rows of shapes from top to bottom gives {rows}, which adds to {shown}",
        "the shapes form rows of {rows} from top to bottom, so there are {shown} objects",
        "taking the rows from the top down, the objects number {rows}, {shown} altogether",
    ],
    "count.goal.remove_shape_count_colour": [
        "Removing the {shape_pl} takes any {colour} {shape_pl} with them, so I count the {colour} objects of other shapes.",
        "I need the {colour} objects that are not {shape_pl}.",
        "After the {shape_pl} are removed, only the non-{shape} {colour} objects count.",
        "The question wants {colour} objects left once every {shape} is gone, so I count {colour} objects by shape.",
    ],
    "count.goal.count_colour_shape": [
        "I need objects that are both {colour} and {shape_pl}, ignoring other colours and shapes.",
        "Only {colour} {shape_pl} count here; {colour} objects of other shapes and {shape_pl} of other colours do not.",
        "The task is to count the {colour} {shape_pl} and nothing else.",
        "I must count shapes that match both conditions: {colour} and {shape}.",
    ],
    "count.goal.remove_colour_count_all": [
        "I need the total number of objects and how many of them are {colour}.",
        "Removing the {colour} ones leaves the total minus the {colour} objects.",
        "The remaining objects are all those that are not {colour}.",
        "I will count all objects, then the {colour} ones, and subtract.",
    ],
    "count.goal.colour_or_shape": [
        "Objects that are {colour} or {shape_pl} are counted once each, so I use inclusion and exclusion.",
        "I need the {colour} objects, the {shape_pl}, and the {colour} {shape_pl} counted in both.",
        "Counting {colour} objects plus {shape_pl} double-counts the {colour} {shape_pl}, so I subtract those.",
        "The union of {colour} objects and {shape_pl} needs three counts.",
    ],
    "count.goal.add_count_colour": [
        "I need the {colour} objects already in the picture, then add {extra}.",
        "Adding {extra} more {colour} objects increases the {colour} count by {extra}.",
        "The new total of {colour} objects is the current count plus {extra}.",
        "First the existing {colour} objects, then the {extra} added ones.",
    ],
    "count.goal.remove_size_count_shape": [
        "After removing the {size} objects, only the {keep} {shape_pl} remain.",
        "I need the {shape_pl} that are {keep}, since the {size} ones are removed.",
        "The {size} {shape_pl} go away with the other {size} objects, so I count {keep} {shape_pl}.",
        "Only {keep} {shape_pl} survive the removal, so those are what I count.",
    ],
    "count.work.sum": [
        "Adding these, {terms} = {result}.",
        "Together that is {terms} = {result}.",
        "In total {terms} = {result}.",
        "Summing: {terms} = {result}.",
    ],
    "count.work.one": [
        "So the count is {result}.",
        "That gives {result}.",
        "So there are {result}.",
        "The count comes to {result}.",
    ],
    "count.work.difference": [
        "Removing them leaves {total} - {part} = {result}.",
        "{total} - {part} = {result} objects remain.",
        "Subtracting, {total} - {part} = {result}.",
        "That leaves {total} - {part} = {result}.",
    ],
    "count.work.union": [
        "By inclusion and exclusion, {a} + {b} - {both} = {result}.",
        "Counting each object once: {a} + {b} - {both} = {result}.",
        "So {a} + {b} - {both} = {result} objects qualify.",
        "Removing the double count, {a} + {b} - {both} = {result}.",
    ],
    "count.work.add": [
        "Adding {extra} gives {have} + {extra} = {result}.",
        "With the new ones, {have} + {extra} = {result}.",
        "So {have} + {extra} = {result}.",
        "After adding, there are {have} + {extra} = {result}.",
    ],
    # ---- line plots
    "plot.read": [
        "At {at} the line is at {shown}.",
        "The point at {at} has the value {shown}.",
        "For {at}, I read {shown}.",
        "The marker at {at} sits at {shown}.",
        "At {at} the graph shows {shown}.",
    ],
    "plot.evidence": [
        "the marker at {at} lies exactly on the horizontal gridline labelled {shown}",
        "moving vertically from {at} on the horizontal axis to the line and across to the vertical axis gives the tick {shown}",
        "the dot at {at} is {gridlines} {side} zero, with gridlines {step} apart, which is {shown}",
        "the point plotted at {at} is level with the {shown} tick on the vertical axis",
    ],
    "plot.evidence_zero": [
        "the marker at {at} sits right on the horizontal axis, the 0 gridline",
        "the point at {at} lies on the x-axis itself, at height 0",
        "at {at} the dot touches the bold horizontal axis line at 0",
        "the marker above {at} is level with the 0 tick, on the x-axis",
    ],
    "plot.evidence_printed": [
        "the number printed beside the point at {at} is {shown}, and the dot sits on the {shown} gridline",
        "the point at {at} carries the label {shown} and lies on the {shown} gridline",
        "next to the marker at {at} the graph prints {shown}, matching the {shown} tick on the vertical axis",
        "the value written at the {at} point is {shown}, level with the gridline labelled {shown}",
    ],
    "plot.goal.slope": [
        "The slope is rise over run between two points on the line, so I read two marked points.",
        "I need two points on the line; the slope is the change in y divided by the change in x.",
        "To get the slope I will read the points at {at1} and {at2} and divide the rise by the run.",
        "The line is straight, so any two marked points give its slope.",
    ],
    "plot.goal.intercept": [
        "The y-intercept is where the line meets the vertical axis, at x = 0.",
        "I need the value of the line at x = 0, where it crosses the y-axis.",
        "The intercept is the y-value of the point on the y-axis.",
        "I look at where the line starts on the y-axis, at x = 0.",
    ],
    "plot.goal.value_at": [
        "I need the y-value of the line at {at1}.",
        "The question asks for the height of the line at {at1}.",
        "I will find the marked point at {at1} and read its y-value.",
        "Reading the graph at {at1} gives the value needed.",
    ],
    "plot.goal.series_value": [
        "I need the value of the line at {at1}.",
        "The question asks for the point at {at1}.",
        "I will find the {at1} point on the line and read it against the vertical axis.",
        "Reading the graph at {at1} gives the value needed.",
    ],
    "plot.goal.increase": [
        "I need the values at {at1} and {at2}, then the difference.",
        "The increase is the later value minus the earlier one, {at2} minus {at1}.",
        "I will read the points at {at1} and {at2} and subtract.",
        "Comparing {at2} with {at1} needs both values from the graph.",
    ],
    "plot.goal.argmax": [
        "I need to compare all the points and find the highest one.",
        "The maximum is the highest point on the line, so I read each point.",
        "I will read every point and pick the largest value.",
        "To find where the line peaks, I compare the values of all points.",
    ],
    "plot.work.slope": [
        "The slope is ({y2} - {y1}) / ({x2} - {x1}) = {rise}/{run} = {result}.",
        "Rise over run: ({y2} - {y1}) / ({x2} - {x1}) = {result}.",
        "Between the two points y changes by {rise} while x changes by {run}, so the slope is {result}.",
        "Dividing the change in y, {rise}, by the change in x, {run}, gives {result}.",
    ],
    "plot.work.value": [
        "So the value there is {result}.",
        "That gives {result}.",
        "So the reading is {result}.",
        "The value is therefore {result}.",
    ],
    "plot.work.increase": [
        "The increase is {vb} - {va} = {result}.",
        "Subtracting, {vb} - {va} = {result}.",
        "It rises by {vb} - {va} = {result}.",
        "The difference is {vb} - {va} = {result}.",
    ],
    "plot.work.argmax": [
        "The highest value is {vmax}, at {result}.",
        "The largest of these is {vmax}, which belongs to {result}.",
        "Comparing them, {result} has the maximum, {vmax}.",
        "The peak is {vmax}, reached at {result}.",
    ],
    # ---- tables
    "table.read": [
        "In the {row} row, {col} is {shown}.",
        "{row} has {shown} under {col}.",
        "The {col} value for {row} is {shown}.",
        "For {row} the table shows {shown} in the {col} column.",
        "The {row} entry in {col} reads {shown}.",
    ],
    "table.evidence": [
        "the cell where the {row} row meets the {col} column holds {shown}",
        "reading across the {row} row to the {col} column I see {shown}",
        "under the {col} header, the entry beside {row} is {shown}",
        "the {col} cell of the {row} row shows {shown}",
    ],
    "table.goal.largest": [
        "I need every value in the {col} column and then the largest one.",
        "I will compare the {col} column row by row.",
        "The task is to find the biggest number in the {col} column and its row.",
        "Each row has a {col} value; I will read them all and compare.",
    ],
    "table.goal.smallest": [
        "I need every value in the {col} column and then the smallest one.",
        "I will compare the {col} column row by row and look for the minimum.",
        "The task is to find the lowest number in the {col} column and its row.",
        "Each row has a {col} value; I will read them all and find the least.",
    ],
    "table.goal.column_total": [
        "I need every entry of the {col} column and their sum.",
        "Adding the {col} column means reading each row's {col} value.",
        "I will read down the {col} column and add.",
        "The total of {col} is the sum over all rows.",
    ],
    "table.goal.difference": [
        "I need the {col} values of {a} and {b}, then their difference.",
        "Comparing {a} with {b} in {col} needs both cells.",
        "I will read the {col} entries for {a} and {b} and subtract.",
        "The difference uses two cells of the {col} column: {a} and {b}.",
    ],
    "table.goal.row_total": [
        "I need every value in the {a} row and their sum.",
        "Adding across the {a} row means reading each of its cells.",
        "I will read the {a} row column by column and add.",
        "The total for {a} is the sum of its entries.",
    ],
    "table.work.extreme": [
        "Comparing {values}, the {word} is {vbest}, for {result}.",
        "Of {values}, the {word} is {vbest}, which is {result}.",
        "Among {values}, {result} has the {word} value, {vbest}.",
        "The {word} of {values} is {vbest}, in the {result} row.",
    ],
}


# ------------------------------------------------------------------------------ plans


@dataclass
class Reading:
    """One value read off the figure."""

    name: str  # how the text refers to it: "the Tue bar", "side AB"
    value: Any  # the true value (int or Fraction)
    read: str  # phrase key of the sentence that states it in a think
    evidence: list[str]  # phrase keys of the back's visual evidence for it
    fields: dict[str, Any]  # template fields besides name/shown
    misreads: list[Any]  # plausible wrong values
    show: Callable[[Any], str] = str  # how a value is written in prose
    notes: dict[Any, str] = field(default_factory=dict)  # wrong value -> why it was wrong (for the back)


@dataclass
class Plan:
    goal: str  # phrase key of the goal sentence
    goal_fields: dict[str, Any]
    readings: list[Reading]
    compute: Callable[[list[Any], Words], tuple[str, str]]  # values -> (answer, work sentence)
    focus: list[int]  # readings the next step depends on most (semantic back picks one)


class Words(random.Random):
    """The seeded chooser of phrasings: within one trace a phrasing is not reused until its slot runs out."""

    def __init__(self, seed: int):
        super().__init__(seed)
        self._used: dict[str, set[int]] = {}

    def pick(self, key: str, **fields: Any) -> str:
        options = PHRASES[key]
        used = self._used.setdefault(key, set())
        if len(used) >= len(options):
            used.clear()
        i = self.choice([j for j in range(len(options)) if j not in used])
        used.add(i)
        return options[i].format(**fields)


def _pick(rng: Words, key: str, **fields: Any) -> str:
    return rng.pick(key, **fields)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def _gridlines(k: int) -> str:
    return f"{k} gridline{'' if k == 1 else 's'}"


def _join_names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def _bar_plan(kind: str, scene: dict) -> Plan:
    vertical = scene["orientation"] == "vertical"
    step, top = scene["step"], "top" if vertical else "end"
    bars = {b["label"]: b for b in scene["bars"]}
    asked = scene["asked"]

    def reading(label: str) -> Reading:
        b = bars[label]
        v = b["value"]
        misreads = [w for w in (v - step, v + step) if step <= w <= scene["axis_max"]]
        notes = {w: f"{w} would be one gridline {'lower' if w < v else 'higher'}" for w in misreads}
        ev = ["bar.evidence", "bar.evidence_printed"] if scene["show_values"] else ["bar.evidence"]
        return Reading(f"the {label} bar", v, "bar.read", ev,
                       {"label": label, "colour": b["colour"], "top": top, "step": step, "gridlines": _gridlines(v // step),
                        "away": "up" if vertical else "out"}, misreads, notes=notes)

    readings = [reading(label) for label in asked]
    if kind == "difference":
        a, b = asked

        def compute(vals, rng):
            r = vals[0] - vals[1]
            if r <= 0:  # a misreading that flips the comparison is not a plausible first pass
                return "", ""
            return str(r), _pick(rng, "bar.work.difference", a=a, b=b, va=vals[0], vb=vals[1], result=r)

        return Plan("bar.goal.difference", {"a": a, "b": b}, readings, compute, [0, 1])
    if kind in ("sum", "total"):
        def compute(vals, rng):
            r = sum(vals)
            return str(r), _pick(rng, "bar.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan(f"bar.goal.{kind}", {"names": _join_names(asked)}, readings, compute, list(range(len(asked))))

    def compute_range(vals, rng):
        hi = max(range(len(vals)), key=lambda i: vals[i])
        lo = min(range(len(vals)), key=lambda i: vals[i])
        r = vals[hi] - vals[lo]
        return str(r), _pick(rng, "bar.work.range", vmax=vals[hi], vmin=vals[lo], lmax=asked[hi], lmin=asked[lo],
                             result=r)

    values = [bars[x]["value"] for x in asked]
    extremes = [values.index(max(values)), values.index(min(values))]
    return Plan("bar.goal.range", {}, readings, compute_range, extremes)


def _geometry_plan(kind: str, scene: dict) -> Plan:
    v = scene["vertices"]
    unit = scene["unit"]
    tri = "".join(v)

    def side(name: str) -> Reading:
        value = scene["sides"][name]["length"]
        misreads = [w for w in (value + 1, value - 1, value + 2) if w > 0]
        return Reading(f"side {name}", value, "geo.side.read", ["geo.side.evidence"],
                       {"side": name, "p": name[0], "q": name[1]}, misreads,
                       show=lambda x: f"{x} {unit}" if unit else str(x))

    def angle(vertex: str) -> Reading:
        value = scene["angles"][vertex]["degrees"]
        return Reading(f"the angle at {vertex}", value, "geo.angle.read", ["geo.angle.evidence"], {"vertex": vertex},
                       [w for w in (value + 5, value - 5, value + 10) if w > 0], show=lambda x: f"{x}°")

    asked = scene["asked"]
    r = scene["right_angle"]
    if kind == "missing_angle":
        readings = [angle(x) for x in asked]

        def compute(vals, rng):
            res = 180 - vals[0] - vals[1]
            if res <= 0:
                return "", ""
            work = rng.choice([
                f"So the angle at {scene['unknown']} is 180 - {vals[0]} - {vals[1]} = {res} degrees.",
                f"Subtracting from 180: 180 - {vals[0]} - {vals[1]} = {res}, so the third angle is {res}°.",
                f"The third angle is 180° - {vals[0]}° - {vals[1]}° = {res}°.",
                f"Since the three angles sum to 180, the missing one is 180 - {vals[0] + vals[1]} = {res} degrees.",
            ])
            return fmt_degrees(res), work

        return Plan("geo.goal.missing_angle", {"tri": tri, "x": scene["unknown"]}, readings, compute, [0, 1])

    readings = [side(x) for x in asked]
    goal_fields = {"tri": tri, "r": r, "h": scene["unknown"], "x": scene["unknown"], "l1": asked[0],
                   "l2": asked[-1]}
    if kind == "hypotenuse":
        h = scene["unknown"]

        def compute(vals, rng):
            s = vals[0] ** 2 + vals[1] ** 2
            ans = fmt_sqrt(s)
            tail = "" if ans == f"\\sqrt{{{s}}}" else f" = {ans}"
            work = rng.choice([
                f"By the Pythagorean theorem, {h}^2 = {vals[0]}^2 + {vals[1]}^2 = {vals[0] ** 2} + {vals[1] ** 2} = {s}, "
                f"so {h} = \\sqrt{{{s}}}{tail}.",
                f"{h} = \\sqrt{{{vals[0]}^2 + {vals[1]}^2}} = \\sqrt{{{s}}}{tail}.",
                f"Squaring the legs gives {vals[0] ** 2} and {vals[1] ** 2}, which sum to {s}; so {h} = \\sqrt{{{s}}}{tail}.",
                f"Pythagoras gives {h}^2 = {s}, hence {h} = \\sqrt{{{s}}}{tail}.",
            ])
            return ans, work

        return Plan("geo.goal.hypotenuse", goal_fields, readings, compute, [0, 1])
    if kind == "leg":
        x = scene["unknown"]
        goal_fields["h"], goal_fields["l1"] = asked[0], asked[1]

        def compute(vals, rng):
            hyp, leg = vals
            s = hyp**2 - leg**2
            if s <= 0:
                return "", ""
            ans = fmt_sqrt(s)
            tail = "" if ans == f"\\sqrt{{{s}}}" else f" = {ans}"
            work = rng.choice([
                f"By the Pythagorean theorem, {x}^2 = {hyp}^2 - {leg}^2 = {hyp**2} - {leg**2} = {s}, "
                f"so {x} = \\sqrt{{{s}}}{tail}.",
                f"{x} = \\sqrt{{{hyp}^2 - {leg}^2}} = \\sqrt{{{s}}}{tail}.",
                f"The hypotenuse squared is {hyp**2} and the known leg squared is {leg**2}; their difference is {s}, "
                f"so {x} = \\sqrt{{{s}}}{tail}.",
                f"Pythagoras gives {x}^2 = {s}, hence {x} = \\sqrt{{{s}}}{tail}.",
            ])
            return ans, work

        return Plan("geo.goal.leg", goal_fields, readings, compute, [0, 1])
    if kind == "right_area":
        def compute(vals, rng):
            prod = vals[0] * vals[1]
            ans = fmt_number(Fraction(prod, 2))
            work = rng.choice([
                f"The area is half the product of the legs: {vals[0]} × {vals[1]} / 2 = {prod}/2 = {ans}.",
                f"Area = (1/2) × {vals[0]} × {vals[1]} = {ans}.",
                f"Multiplying the legs gives {prod}, and half of that is {ans}.",
                f"Half of {vals[0]} times {vals[1]} is {prod}/2 = {ans}.",
            ])
            return ans, work

        return Plan("geo.goal.right_area", goal_fields, readings, compute, [0, 1])
    if kind == "perimeter":
        def compute(vals, rng):
            total = sum(vals)
            terms = " + ".join(map(str, vals))
            work = rng.choice([f"Adding the sides, {terms} = {total}.", f"The perimeter is {terms} = {total}.",
                               f"Summing the three sides gives {terms} = {total}.", f"{terms} = {total}."])
            return fmt_number(total), work

        return Plan("geo.goal.perimeter", goal_fields, readings, compute, [0, 1, 2])
    if kind == "rect_area":
        def compute(vals, rng):
            res = vals[0] * vals[1]
            work = rng.choice([f"The area is {vals[0]} × {vals[1]} = {res}.", f"Width times height: {vals[0]} × {vals[1]} = {res}.",
                               f"Multiplying the sides, {vals[0]} × {vals[1]} = {res}.", f"So the area is {vals[0]} times {vals[1]}, which is {res}."])
            return fmt_number(res), work

        return Plan("geo.goal.rect_area", goal_fields, readings, compute, [0, 1])

    def compute_perimeter(vals, rng):
        res = 2 * (vals[0] + vals[1])
        work = rng.choice([f"The perimeter is 2 × ({vals[0]} + {vals[1]}) = {res}.",
                           f"Each side appears twice: {vals[0]} + {vals[1]} + {vals[0]} + {vals[1]} = {res}.",
                           f"Twice the sum of the sides, 2 × {vals[0] + vals[1]} = {res}.",
                           f"So 2 × ({vals[0]} + {vals[1]}) = {res}."])
        return fmt_number(res), work

    return Plan("geo.goal.rect_perimeter", goal_fields, readings, compute_perimeter, [0, 1])


def _count_plan(kind: str, scene: dict) -> Plan:
    objects = scene["objects"]

    def select(**match: str) -> list[dict]:
        return [o for o in objects if all(o[k] == val for k, val in match.items())]

    def category(one: str, many: str, members: list[dict], **match: str) -> Reading:
        n = len(members)
        places = [f"the {o['region']}" if match.get("size") else f"the {o['region']} ({o['size']})" for o in members]
        misreads = [w for w in (n - 1, n + 1) if w >= 0]
        notes = {n - 1: f"I had missed the {one} at the {members[-1]['region']}" if n else "",
                 n + 1: "I had counted one object too many"}
        key = "count.evidence_zero" if n == 0 else ("count.evidence_one" if n == 1 else "count.evidence")
        return Reading(f"the number of {many}", n, "count.read", [key],
                       {"cat_one": one, "cat_pl": many, "places": _join_names(places) if places else ""}, misreads,
                       notes={k: v for k, v in notes.items() if v})

    c, s = scene.get("colour"), scene.get("shape")
    goal_fields = {"colour": c, "shape": s, "shape_pl": f"{s}s" if s else "", "extra": scene.get("add"),
                   "size": scene.get("size"), "keep": "large" if scene.get("size") == "small" else "small"}
    if kind == "remove_shape_count_colour":
        others = [t for t in ("circle", "square", "triangle", "star") if t != s and select(colour=c, shape=t)]
        readings = [category(f"{c} {t}", f"{c} {t}s", select(colour=c, shape=t), colour=c, shape=t) for t in others]

        def compute(vals, rng):
            r = sum(vals)
            if len(vals) == 1:
                return str(r), _pick(rng, "count.work.one", result=r)
            return str(r), _pick(rng, "count.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan("count.goal.remove_shape_count_colour", goal_fields, readings, compute, list(range(len(readings))))
    if kind == "count_colour_shape":
        readings = [category(f"{c} {s}", f"{c} {s}s", select(colour=c, shape=s), colour=c, shape=s)]
        return Plan("count.goal.count_colour_shape", goal_fields, readings,
                    lambda vals, rng: (str(vals[0]), _pick(rng, "count.work.one", result=vals[0])), [0])
    if kind == "remove_colour_count_all":
        rows = [sum(1 for o in objects if o["row"] == i) for i in range(scene["rows"])]
        total = Reading("the total number of objects", len(objects), "count.read", ["count.evidence_rows"],
                        {"cat_one": "object", "cat_pl": "objects", "rows": _join_names([str(x) for x in rows if x])},
                        [len(objects) - 1, len(objects) + 1],
                        notes={len(objects) - 1: "I had skipped one object", len(objects) + 1: "I had counted one twice"})
        part = category(f"{c} object", f"{c} objects", select(colour=c), colour=c)

        def compute(vals, rng):
            r = vals[0] - vals[1]
            return str(r), _pick(rng, "count.work.difference", total=vals[0], part=vals[1], result=r)

        return Plan("count.goal.remove_colour_count_all", goal_fields, [total, part], compute, [0, 1])
    if kind == "colour_or_shape":
        readings = [category(f"{c} object", f"{c} objects", select(colour=c), colour=c),
                    category(s, f"{s}s", select(shape=s), shape=s),
                    category(f"{c} {s}", f"{c} {s}s", select(colour=c, shape=s), colour=c, shape=s)]

        def compute(vals, rng):
            r = vals[0] + vals[1] - vals[2]
            if vals[2] > min(vals[0], vals[1]):
                return "", ""
            return str(r), _pick(rng, "count.work.union", a=vals[0], b=vals[1], both=vals[2], result=r)

        return Plan("count.goal.colour_or_shape", goal_fields, readings, compute, [0, 1, 2])
    if kind == "add_count_colour":
        readings = [category(f"{c} object", f"{c} objects", select(colour=c), colour=c)]
        extra = scene["add"]
        return Plan("count.goal.add_count_colour", goal_fields, readings,
                    lambda vals, rng: (str(vals[0] + extra),
                                       _pick(rng, "count.work.add", have=vals[0], extra=extra, result=vals[0] + extra)),
                    [0])
    keep = goal_fields["keep"]
    readings = [category(f"{keep} {s}", f"{keep} {s}s", select(shape=s, size=keep), shape=s, size=keep)]
    return Plan("count.goal.remove_size_count_shape", goal_fields, readings,
                lambda vals, rng: (str(vals[0]), _pick(rng, "count.work.one", result=vals[0])), [0])


def _plot_plan(kind: str, scene: dict) -> Plan:
    step = scene["step"]
    linear = scene["series"] == "linear"
    by_x = {p["x"]: p for p in scene["points"]}
    by_label = {p["label"]: p for p in scene["points"]}

    def at(p: dict) -> str:
        return f"x = {p['x']}" if linear else p["label"]

    def reading(p: dict) -> Reading:
        y = p["y"]
        offsets = (step, -step, 2 * step, -2 * step) if kind == "argmax" else (step, -step)
        misreads = [y + d for d in offsets if scene["y_min"] <= y + d <= scene["y_max"]]
        notes = {w: f"{w} is {'the gridline just' if abs(w - y) == step else 'two gridlines'} "
                    f"{'below' if w < y else 'above'} it" for w in misreads}
        ev = ["plot.evidence", "plot.evidence_printed"] if scene["show_values"] else ["plot.evidence"]
        if y == 0:
            ev = ["plot.evidence_printed"] if scene["show_values"] else ["plot.evidence_zero"]
        return Reading(f"the point at {at(p)}", y, "plot.read", ev,
                       {"at": at(p), "gridlines": _gridlines(abs(y) // step), "step": step, "side": "above" if y > 0 else "below"},
                       misreads, notes=notes)

    points = [by_x[x] for x in scene["asked"]] if linear else [by_label[x] for x in scene["asked"]]
    readings = [reading(p) for p in points]
    goal_fields = {"at1": at(points[0]), "at2": at(points[-1])}
    if kind == "slope":
        x1, x2 = points[0]["x"], points[1]["x"]

        def compute(vals, rng):
            rise, run = vals[1] - vals[0], x2 - x1
            res = fmt_number(Fraction(rise, run))
            y1 = f"({vals[0]})" if vals[0] < 0 else str(vals[0])
            return res, _pick(rng, "plot.work.slope", y1=y1, y2=vals[1], x1=x1, x2=x2, rise=rise, run=run, result=res)

        return Plan("plot.goal.slope", goal_fields, readings, compute, [0, 1])
    if kind in ("intercept", "value_at", "series_value"):
        return Plan(f"plot.goal.{kind}", goal_fields, readings,
                    lambda vals, rng: (fmt_number(vals[0]), _pick(rng, "plot.work.value", result=vals[0])), [0])
    if kind == "increase":
        def compute(vals, rng):
            r = vals[1] - vals[0]
            if r <= 0:
                return "", ""
            return str(r), _pick(rng, "plot.work.increase", va=vals[0], vb=vals[1], result=r)

        return Plan("plot.goal.increase", goal_fields, readings, compute, [0, 1])
    labels = [p["label"] for p in points]

    def compute_argmax(vals, rng):
        best = max(vals)
        if vals.count(best) > 1:
            return "", ""
        return labels[vals.index(best)], _pick(rng, "plot.work.argmax", vmax=best, result=labels[vals.index(best)])

    values = [p["y"] for p in points]
    ranked = sorted(range(len(values)), key=lambda i: -values[i])
    return Plan("plot.goal.argmax", goal_fields, readings, compute_argmax, ranked[:2])


def _table_plan(kind: str, scene: dict) -> Plan:
    rows = {r["name"]: r for r in scene["rows"]}
    names = [r["name"] for r in scene["rows"]]
    col = scene["column"]

    def reading(row: str, column: str) -> Reading:
        v = rows[row][column]
        i = names.index(row)
        neighbours = [names[j] for j in (i + 1, i - 1) if 0 <= j < len(names) and rows[names[j]][column] != v]
        misreads = [rows[n][column] for n in neighbours]
        notes = {rows[n][column]: f"{rows[n][column]} is the entry in the {n} row" for n in neighbours}
        if v >= 10:  # a misread tens digit
            for w in (v + 10, v - 10):
                if 0 < w < 100 and w not in notes:
                    misreads.append(w)
                    notes[w] = f"the tens digit of that cell is {v // 10}, not {w // 10}"
        return Reading(f"the {column} value of {row}", v, "table.read", ["table.evidence"],
                       {"row": row, "col": column}, misreads, notes=notes)

    asked = scene["asked"]
    if kind == "row_total":
        row = asked[0]
        readings = [reading(row, c) for c in scene["columns"]]

        def compute(vals, rng):
            r = sum(vals)
            return str(r), _pick(rng, "bar.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan("table.goal.row_total", {"a": row}, readings, compute, list(range(len(readings))))
    readings = [reading(r, col) for r in asked]
    if kind in ("largest", "smallest"):
        word = "largest" if kind == "largest" else "smallest"

        def compute(vals, rng):
            best = max(vals) if kind == "largest" else min(vals)
            if vals.count(best) > 1:
                return "", ""
            winner = asked[vals.index(best)]
            return winner, _pick(rng, "table.work.extreme", values=_join_names([str(v) for v in vals]), word=word,
                                 vbest=best, result=winner)

        values = [rows[r][col] for r in asked]
        ranked = sorted(range(len(values)), key=lambda i: -values[i] if kind == "largest" else values[i])
        return Plan(f"table.goal.{kind}", {"col": col}, readings, compute, ranked[:2])
    if kind == "column_total":
        def compute(vals, rng):
            r = sum(vals)
            return str(r), _pick(rng, "bar.work.sum", terms=" + ".join(map(str, vals)), result=r)

        return Plan("table.goal.column_total", {"col": col}, readings, compute, list(range(len(readings))))
    a, b = asked

    def compute_diff(vals, rng):
        r = vals[0] - vals[1]
        if r <= 0:
            return "", ""
        return str(r), _pick(rng, "bar.work.difference", a=a, b=b, va=vals[0], vb=vals[1], result=r)

    return Plan("table.goal.difference", {"col": col, "a": a, "b": b}, readings, compute_diff, [0, 1])


PLANNERS: dict[str, Callable[[str, dict], Plan]] = {
    "bar_chart": _bar_plan,
    "geometry": _geometry_plan,
    "counting": _count_plan,
    "line_plot": _plot_plan,
    "table": _table_plan,
}

# ------------------------------------------------------------------------------ writing


@dataclass(frozen=True)
class SceneTrace:
    """A written trace and what happened in it (for tests and statistics)."""

    text: str
    misread: bool  # the first pass misread a value and the back corrected it
    candidate: str | None  # solution_back: the first think's candidate answer


def write_trace(problem: Problem, variant: str, seed: int, misread_rate: float = 0.2) -> SceneTrace:
    """Write one trace for ``problem`` in ``variant``; the same arguments always give the same text."""
    variant = parse_variant(variant)
    scene = problem.meta.get("scene")
    family, kind = problem.meta.get("family"), problem.meta.get("kind")
    if not isinstance(scene, dict) or family is None or kind is None:
        raise TeacherError(
            f"problem {problem.id} has no scene facts; the scene teacher only works with --source synthetic. "
            "For other sources use an OpenAI-compatible teacher (--teacher gpt-4o or --teacher openai:<model>)"
        )
    rng = Words(seed)
    wants_misread = variant != "plain" and rng.random() < misread_rate
    choices: list[str] | None = None
    if family == "multiple_choice":
        choices = scene["choices"]
        family, scene = scene["base_family"], scene["base"]
    if family not in PLANNERS:
        raise TeacherError(f"problem {problem.id}: the scene teacher does not know the family {family!r}")
    plan = PLANNERS[family](kind, scene)
    true_values = [r.value for r in plan.readings]
    answer, _ = plan.compute(true_values, Words(0))
    final = problem.answer
    expected = ("ABCD"[choices.index(answer)] if answer in choices else None) if choices else answer
    if expected != final:
        raise TeacherError(f"problem {problem.id}: the scene facts give {answer!r} but the gold answer is "
                           f"{final!r}; the problem was not made by this version of the synthetic source")

    misread: tuple[int, Any, str] | None = None
    if wants_misread:
        options = []
        for i, r in enumerate(plan.readings):
            for w in r.misreads:
                vals = list(true_values)
                vals[i] = w
                wrong_answer, _ = plan.compute(vals, Words(0))
                if not wrong_answer or wrong_answer == answer or (choices and wrong_answer not in choices):
                    continue
                options.append((i, w, wrong_answer))
        if options:
            misread = rng.choice(options)

    def letter(value: str) -> str:
        return "ABCD"[choices.index(value)] if choices else value

    def reads(values: list[Any]) -> list[str]:
        out = []
        for i, r in enumerate(plan.readings):
            fields = dict(r.fields)
            if "cat_one" in fields:  # counts agree in number with the value stated
                fields["cat"] = fields["cat_one"] if values[i] == 1 else fields["cat_pl"]
            out.append(_pick(rng, r.read, name=r.name, shown=r.show(values[i]), **fields))
        return out

    def finish(values: list[Any]) -> tuple[str, list[str]]:
        """The answer from ``values`` and the sentences that compute it (and map it to a letter)."""
        result, work = plan.compute(values, rng)
        out = [work]
        if choices:
            out.append(_pick(rng, "choice", value=result, letter=letter(result)))
        return letter(result), out

    def evidence(r: Reading) -> str:
        return _pick(rng, rng.choice(r.evidence), name=r.name, shown=r.show(r.value), **r.fields)

    first_values = list(true_values)
    if misread:
        first_values[misread[0]] = misread[1]
    opening = [_pick(rng, "open"), _pick(rng, plan.goal, **plan.goal_fields)]

    if variant == "plain":
        final_answer, work = finish(true_values)
        think = " ".join([*opening, *reads(true_values), *work, _pick(rng, "conclude", answer=final_answer)])
        return SceneTrace(f"<think> {think} </think>\n\\boxed{{{final}}}", False, None)

    if variant == "semantic_back":
        focus = misread[0] if misread else rng.choice(plan.focus)
        r = plan.readings[focus]
        think1 = " ".join([*opening, *reads(first_values), _pick(rng, "bridge", name=r.name)])
        shown, wrong = r.show(r.value), r.show(misread[1]) if misread else ""
        back = f"{_pick(rng, 'back_open')} {evidence(r)}"
        if misread:
            back += _pick(rng, "correct", shown=shown, wrong=wrong)
            note = r.notes.get(misread[1])
            if note:
                back += f" {_cap(note)}."
            lead = _pick(rng, "continue_fixed", name=r.name, shown=shown, wrong=wrong)
        else:
            back += _pick(rng, "confirm", shown=shown)
            lead = _pick(rng, "continue", name=r.name, shown=shown)
        final_answer, work = finish(true_values)
        think2 = " ".join([lead, *work, _pick(rng, "conclude", answer=final_answer)])
        return SceneTrace(_shape(think1, back, think2, final), misread is not None, None)

    # solution_back
    candidate, work1 = finish(first_values)
    think1 = " ".join([*opening, *reads(first_values), *work1, _pick(rng, "candidate", answer=candidate)])
    checks = [_pick(rng, "verify_open")]
    for i, r in enumerate(plan.readings):
        sentence = _cap(evidence(r))
        if misread and i == misread[0]:
            sentence += _pick(rng, "check_bad", wrong=r.show(misread[1]))
            note = r.notes.get(misread[1])
            if note:
                sentence += f" {_cap(note)}."
        else:
            sentence += _pick(rng, "check_ok")
        checks.append(sentence)
    if misread:
        r = plan.readings[misread[0]]
        shown, wrong = r.show(r.value), r.show(misread[1])
        checks.append(_pick(rng, "verdict_bad", shown=shown, name=r.name, candidate=candidate))
        final_answer, work2 = finish(true_values)
        think2 = " ".join([_pick(rng, "rethink_fix", shown=shown, name=r.name, wrong=wrong), *work2,
                           f"So the answer is {final_answer}, not {candidate}."])
    else:
        checks.append(_pick(rng, "verdict_ok"))
        think2 = " ".join([_pick(rng, "rethink_ok", answer=candidate), _pick(rng, "conclude", answer=candidate)])
    return SceneTrace(_shape(think1, " ".join(checks), think2, final), misread is not None, candidate)


def _shape(think1: str, back: str, think2: str, answer: str) -> str:
    return f"<think> {think1} </think>\n<back> {back} </back>\n<think> {think2} </think>\n\\boxed{{{answer}}}"


@lru_cache(maxsize=1)
def phrase_bank_hash() -> str:
    return content_hash({"version": VERSION, "phrases": PHRASES})


class SceneTeacher(Teacher):
    """Offline teacher for the synthetic source: traces written from the scene facts."""

    name = "scene"

    def __init__(self, misread_rate: float = 0.2, model: str = "scene-v1"):
        if not 0.0 <= misread_rate <= 1.0:
            raise TeacherError(f"misread_rate must be between 0 and 1, got {misread_rate}")
        self.misread_rate = float(misread_rate)
        self.model = model

    @property
    def info(self) -> TeacherInfo:
        return TeacherInfo(backend="scene", model=self.model, params={"misread_rate": self.misread_rate})

    def prompt_hash(self, variant: str, mode: str) -> str:
        return content_hash({"bank": phrase_bank_hash(), "variant": parse_variant(variant), "mode": mode})

    def write(self, problem: Problem, variant: str, seed: int) -> SceneTrace:
        return write_trace(problem, variant, seed, self.misread_rate)

    async def generate(self, request: TraceRequest) -> TeacherResponse:
        if request.mode != "write":
            raise TeacherError(
                "the scene teacher writes whole traces only; use --mode write, or an OpenAI-compatible "
                "teacher for insert mode"
            )
        trace = self.write(request.problem, request.variant, request.seed)
        return TeacherResponse(text=trace.text, usage=Usage(), finish_reason="stop")
