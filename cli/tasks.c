/* tasks.c - deterministic synthetic long-context tasks and `hsac gen-task`
 * (docs/tasks.md).
 *
 * An item is built in three independent random streams, all splitmix64
 * seeded from (seed, task, needle kind, count, chains):
 *  - the content stream picks the keys, values, variable names, the depth
 *    (a fraction of the filler) of every needle, and the question; it never
 *    sees the length, so a seed asks the same question at every length;
 *  - the filler stream picks the filler's style (how often fixed sentences
 *    appear, a small pool of random-word sentences that repeat, how often a
 *    fresh random-word sentence or a paragraph break appears) and then the
 *    sentences one by one (prose styles: where the reading starts, then
 *    consecutive sentences of the corpus; docs/tasks.md "Filler");
 *  - the phrasing stream picks the wording variant of the needles and the
 *    question, so a phrasing changes the words and nothing else.
 *
 * Layout: header "\n"-terminated, then units (filler sentences and needle
 * sentences) joined by one separator byte each (a space, or a newline for a
 * paragraph break), then the question, which starts with "\n" and ends where
 * the answer begins.  With H, Q the header and question bytes and N the
 * needles' bytes plus one separator each, the filler units (sentence plus
 * separator) must fill exactly F = length + 1 - H - Q - N bytes.  Whole
 * sentences are taken while they leave 0 or at least 3 bytes; the last is
 * a random-word sentence built to the exact remaining size (any size >= 2
 * can be built: the word list has words of every length 1..9).  A needle of
 * depth d goes before the first filler unit that starts at or after
 * floor(d * F) bytes of filler; depth 1 puts it right before the question.
 * Hence the least length is H + Q + N + 2: one filler sentence of 2 bytes.
 *
 * The same bytes everywhere: integer arithmetic only (depths are fractions
 * of 2^32), and every random draw is a statement of its own (the order in
 * which a call's arguments are evaluated is unspecified: two draws in one
 * argument list differ between gcc and clang).  tests/unit/test_tasks.c
 * pins the bytes of a few items. */
#include "cli/tasks.h"
#include "cli/args.h"
#include "cli/commands.h"
#include "cli/corpus.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- word lists ------------------------------------------------------------
 * Invariant (tk_self_check): no value word occurs inside any other text the
 * generator writes, so a value is found in a prompt only where it was put.
 * Filler words are lowercase, have no digits or hyphens, and cover every
 * length 1..9. */

static const char *const filler_words[] = {
    "a",
    "an", "as", "at", "by", "do", "go", "he", "if", "in", "is", "it", "me", "my", "no", "of",
    "on", "or", "so", "to", "up", "we",
    "and", "are", "but", "can", "day", "far", "few", "for", "had", "has", "her", "his", "how",
    "its", "new", "not", "now", "old", "one", "our", "out", "own", "saw", "say", "see", "she",
    "sky", "sun", "the", "too", "two", "way", "who", "why", "yes", "yet", "you",
    "also", "away", "back", "been", "best", "both", "came", "city", "cold", "come", "dark",
    "does", "down", "each", "even", "ever", "face", "fact", "feel", "find", "fire", "from",
    "full", "gave", "give", "good", "half", "hand", "hard", "have", "here", "high", "hill",
    "hold", "home", "hope", "just", "keep", "kind", "knew", "know", "land", "last", "late",
    "left", "life", "like", "line", "long", "look", "made", "make", "many", "mind", "more",
    "most", "move", "much", "must", "name", "near", "need", "next", "once", "only", "open",
    "over", "part", "past", "plan", "play", "read", "real", "rest", "road", "room", "said",
    "same", "seen", "ship", "show", "side", "slow", "some", "soon", "stay", "such", "sure",
    "take", "talk", "tell", "than", "that", "them", "then", "they", "this", "time", "told",
    "took", "town", "tree", "true", "turn", "upon", "very", "wait", "walk", "wall", "want",
    "warm", "well", "went", "were", "what", "when", "wide", "wind", "with", "work", "year",
    "about", "above", "after", "again", "along", "began", "being", "below", "bring", "built",
    "carry", "clear", "close", "could", "early", "earth", "every", "field", "first", "found",
    "given", "great", "green", "group", "heard", "heavy", "horse", "house", "large", "later",
    "learn", "light", "might", "never", "night", "often", "order", "other", "place", "plain",
    "quiet", "quite", "ready", "right", "river", "round", "small", "sound", "south", "stand",
    "still", "stone", "story", "study", "their", "there", "these", "thing", "think", "those",
    "three", "under", "until", "water", "where", "which", "while", "white", "whole", "world",
    "would", "young",
    "across", "always", "around", "before", "behind", "better", "beyond", "change", "corner",
    "during", "enough", "family", "father", "follow", "forest", "garden", "ground", "little",
    "market", "moment", "mother", "nature", "people", "person", "rather", "reason", "second",
    "should", "simple", "spring", "summer", "though", "toward", "travel", "valley", "window",
    "winter", "within",
    "against", "another", "because", "between", "brought", "certain", "country", "evening",
    "example", "morning", "nothing", "perhaps", "picture", "present", "problem", "several",
    "student", "through", "without",
    "although", "children", "complete", "continue", "distance", "everyone", "finished",
    "mountain", "together",
    "afternoon", "beautiful", "different", "direction", "important", "knowledge", "something",
    "sometimes", "wonderful", "yesterday",
};

static const char *const fixed_sentences[] = {
    "The grass is green.",
    "The sky is blue.",
    "The sun is yellow.",
    "Here we go.",
    "There and back again.",
    "The river flows to the sea.",
    "Birds sing in the morning.",
    "The road goes ever on and on.",
    "Rain falls on the quiet town.",
    "The wind moves through the trees.",
    "A small boat drifts on the lake.",
    "The old clock ticks in the hall.",
    "Snow covers the distant hills.",
    "The market opens at dawn.",
    "Leaves turn gold in the autumn.",
    "Children play in the park.",
    "The train leaves at noon.",
    "Stars shine over the valley.",
    "The bread is warm and fresh.",
    "A cat sleeps by the window.",
    "The door is painted red.",
    "Waves break on the shore.",
    "The lamp glows in the dark.",
    "Smoke rises from the chimney.",
};

/* Values of word needles (at least TK_MAX_COUNT of them). */
static const char *const value_words[] = {
    "apricot", "avocado", "blackberry", "blueberry", "cantaloupe", "cherimoya", "clementine",
    "coconut", "cranberry", "durian", "elderberry", "grapefruit", "huckleberry", "jackfruit",
    "kumquat", "lychee", "mandarin", "mulberry", "nectarine", "papaya", "persimmon",
    "pineapple", "plantain", "pomegranate", "quince", "raspberry", "rambutan", "tamarind",
    "tangerine", "watermelon",
    "amethyst", "aquamarine", "citrine", "emerald", "garnet", "jasper", "malachite", "obsidian",
    "peridot", "quartz", "sapphire", "topaz", "tourmaline", "turquoise", "zircon",
    "albatross", "armadillo", "axolotl", "badger", "barracuda", "chameleon", "cheetah",
    "chinchilla", "cormorant", "coyote", "flamingo", "gazelle", "giraffe", "hedgehog", "iguana",
    "jaguar", "kangaroo", "kingfisher", "leopard", "lobster", "meerkat", "mongoose", "narwhal",
    "ocelot", "octopus", "pangolin", "pelican", "penguin", "platypus", "porcupine", "raccoon",
    "salamander", "scorpion", "starfish", "tortoise", "toucan", "walrus", "wolverine", "wombat",
    "accordion", "bagpipe", "bassoon", "clarinet", "harmonica", "harpsichord", "mandolin",
    "marimba", "piccolo", "saxophone", "trombone", "ukulele", "xylophone",
    "cardamom", "cinnamon", "coriander", "fennel", "nutmeg", "oregano", "paprika", "saffron",
    "turmeric", "vanilla",
};

/* Keys are "adjective-noun". */
static const char *const key_adjectives[] = {
    "amber", "brave", "bright", "calm", "clever", "crimson", "curious", "daring", "dusty",
    "eager", "fancy", "fierce", "gentle", "gloomy", "golden", "grumpy", "happy", "hollow",
    "humble", "icy", "jolly", "lively", "lucky", "mellow", "misty", "noble", "polite", "proud",
    "quick", "rapid", "rusty", "shiny", "silent", "sleepy", "smooth", "snowy", "sturdy", "sunny",
    "swift", "tender", "tiny", "vivid", "wandering", "wise", "witty", "zealous",
};
static const char *const key_nouns[] = {
    "anchor", "arrow", "bridge", "candle", "castle", "cloud", "comet", "compass", "crown",
    "desert", "engine", "feather", "glacier", "hammer", "harbor", "island", "jungle", "kettle",
    "ladder", "lantern", "meadow", "mirror", "needle", "orbit", "palace", "pebble", "pillow",
    "planet", "prism", "rocket", "saddle", "shadow", "signal", "spiral", "summit", "teapot",
    "thunder", "tower", "tunnel", "velvet", "violin", "wagon", "whistle", "willow",
};

#define COUNT_OF(a) (sizeof(a) / sizeof((a)[0]))

/* bAbI-style stories (TK_BABI): people, the places they move between and
 * the objects they pick up.  No name, place or object contains another
 * text's word, nor a value word (tk_self_check). */
static const char *const babi_people[] = {
    "Mary", "John", "Sandra", "Daniel", "Fred", "Julie", "Oliver", "Lucas", "Nina", "Harold",
    "Bernard", "Yvonne",
};
static const char *const babi_places[] = {
    "kitchen", "bathroom", "bedroom", "office", "cellar", "attic", "garage", "library",
    "pantry", "balcony",
};
static const char *const babi_objects[] = {
    "football", "milk", "umbrella", "backpack", "notebook", "guitar", "basket", "helmet",
};
enum { BABI_PEOPLE_IN_STORY = 4 };

/* ---- phrasings ----------------------------------------------------------------
 * TK_NVARIANTS wordings of every needle and question; variant 0 is the
 * original (and default) wording, 4 and 5 are held out, all the others
 * (0..3 and 6..23) are for training.  Variants 12..23 vary the core
 * sentence (where the value stands, colon, "=" and "->" forms, answers
 * after "It is", "Answer:", "A:"), written afresh rather than from the
 * held-out ones.  Holes: {n} the needle kind's name, {k} a key, {K} every
 * key ("a, b and c"), {v} a value, {a} a variable, {b} the variable it
 * copies, {p} a person, {l} a place, {o} an object.  A question ends where
 * the answer begins.  babi facts start with the person and name the place
 * or object after their first " the "; babi questions name "the OBJECT" in
 * lowercase, and only "before" questions hold "before". */

static const char *const passkey_needle[TK_NVARIANTS] = {
    "The passkey is {v}. Remember it. {v} is the passkey.",
    "Remember this passkey: {v}. The passkey is {v}.",
    "The secret passkey is {v}. Keep it safe.",
    "Please note: {v} is the passkey, and you will need it.",
    "The code you must keep in mind is the passkey {v}.",
    "Passkey: {v}. Do not forget this passkey.",
    /* 6..11: more training wordings (session 7) */
    "Here is the passkey to remember: {v}.",
    "Your passkey is {v}. Hold on to it.",
    "Write this down, the passkey is {v}.",
    "A passkey was chosen for you: {v}. Memorize it.",
    "Keep the following passkey in memory: {v}.",
    "{v} is the passkey. It will be asked for later.",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "{v}: that is the passkey.",
    "The one passkey that matters here is {v}.",
    "The passkey, in case you need it, is {v}.",
    "Memorize {v}; it is the passkey.",
    "There is a passkey, and it is {v}.",
    "To get in later you will need the passkey {v}.",
    "I am telling you the passkey now: {v}.",
    "The passkey {v} must not be forgotten.",
    "Only one passkey exists, namely {v}.",
    "Remember that {v} is the passkey you were given.",
    "The passkey for later use: {v}.",
    "Keep it secret: the passkey is {v}.",
};
static const char *const passkey_question[TK_NVARIANTS] = {
    "\nWhat is the passkey? The passkey is ",
    "\nWhat is the passkey mentioned above? The passkey is ",
    "\nRecall the secret passkey. The secret passkey is ",
    "\nWhich passkey did the text give? The passkey is ",
    "\nWhat was the passkey? It is ",
    "\nThe passkey from the text above is ",
    /* 6..11: more training wordings (session 7) */
    "\nWhat passkey was hidden in the text? Answer: ",
    "\nGive the passkey. The passkey was ",
    "\nRepeat the passkey you memorized: ",
    "\nWhat is the hidden passkey? The hidden passkey is ",
    "\nState the passkey from above. It was ",
    "\nWhich passkey were you asked to remember? Passkey: ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\nDo you remember the passkey? Yes, it is ",
    "\nThe passkey = ",
    "\nWhat passkey appeared earlier? The answer is ",
    "\nTell me the passkey. Sure, the passkey is ",
    "\nYou read a passkey somewhere above. It is ",
    "\nFill in the passkey: ",
    "\nQ: what is the passkey? A: ",
    "\nHow does the passkey go? It goes ",
    "\nAs for the passkey, it is ",
    "\nWhat is the passkey? Reply with it only: ",
    "\nName the passkey. It is ",
    "\nRemember the passkey? Write it here: ",
};
static const char *const key_needle[TK_NVARIANTS] = { /* multikey, multiquery */
    "The special magic {n} for {k} is: {v}.",
    "The magic {n} for {k} is {v}.",
    "For {k}, the special magic {n} is {v}.",
    "Special magic {n} of {k}: {v}.",
    "Remember that {k} has the special magic {n} {v}.",
    "The special magic {n} that goes with {k} reads {v}.",
    /* 6..11: more training wordings (session 7) */
    "The {n} assigned to {k} is {v}.",
    "{k} goes with the special magic {n} {v}.",
    "Here is the special magic {n} for {k}: {v}.",
    "Write down {v}, the magic {n} of {k}.",
    "Keep in mind: the special magic {n} for {k} equals {v}.",
    "Magic {n} for {k} = {v}.",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "{v} is the special magic {n} for {k}.",
    "The special magic {n} of {k} is {v}.",
    "{k}: special magic {n} {v}.",
    "Under {k}, file the special magic {n} {v}.",
    "The special magic {n} {v} belongs to {k}.",
    "Special magic {n} for {k}? It is {v}.",
    "If asked about {k}, answer {v}: that is its special magic {n}.",
    "For the key {k} the special magic {n} will be {v}.",
    "{k} -> {v}, its special magic {n}.",
    "The special magic {n} for {k} was set to {v}.",
    "Please memorize {v} as the special magic {n} of {k}.",
    "Special magic {n}, {k}: {v}.",
};
static const char *const multikey_question[TK_NVARIANTS] = {
    "\nWhat is the special magic {n} for {k}? The special magic {n} for {k} is: ",
    "\nWhat is the magic {n} for {k}? The magic {n} for {k} is ",
    "\nTell me the special magic {n} of {k}. It is ",
    "\nFind the special magic {n} for {k}. The special magic {n} for {k} is ",
    "\nWhich special magic {n} belongs to {k}? It is ",
    "\nRecall the special magic {n} that goes with {k}: ",
    /* 6..11: more training wordings (session 7) */
    "\nWhich magic {n} was given for {k}? Answer: ",
    "\nGive the special magic {n} of {k}. The {n} is ",
    "\nWhat {n} is assigned to {k}? It was ",
    "\nState the magic {n} for {k}: ",
    "\nWhat was the special magic {n} for {k}? The special magic {n} was ",
    "\nRepeat the special magic {n} of {k}. Answer: ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\nThe special magic {n} for {k} = ",
    "\n{k}: special magic {n}? Answer: ",
    "\nWhat did the text give as the special magic {n} of {k}? It gave ",
    "\nQ: the special magic {n} for {k}? A: ",
    "\nLook up {k}. Its special magic {n} is ",
    "\nFor {k}, what is the special magic {n}? For {k} it is ",
    "\nYou saw a special magic {n} for {k}. It is ",
    "\nFill in the special magic {n} of {k}: ",
    "\nWhat special magic {n} was {k} given? {k} was given ",
    "\nName the magic {n} for {k}. It is ",
    "\nThe value of the special magic {n} for {k} is ",
    "\nHow does the special magic {n} of {k} go? It goes ",
};
static const char *const multiquery_question[TK_NVARIANTS] = {
    "\nWhat are the special magic {n}s for {K}? The special magic {n}s for {K} are: ",
    "\nWhat are the magic {n}s for {K}? The magic {n}s for {K} are ",
    "\nTell me the special magic {n}s of {K}. They are ",
    "\nFind the special magic {n}s for {K}. In that order they are ",
    "\nWhich special magic {n}s belong to {K}? They are ",
    "\nRecall the special magic {n}s that go with {K}: ",
    /* 6..11: more training wordings (session 7) */
    "\nGive the magic {n}s for {K}, in order. Answer: ",
    "\nWhich {n}s are assigned to {K}? In order: ",
    "\nState the special magic {n}s of {K}: ",
    "\nWhat were the special magic {n}s for {K}? They were ",
    "\nRepeat the magic {n}s for {K}, one by one: ",
    "\nList the special magic {n}s for {K}. Answer: ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\nThe special magic {n}s for {K}, in that order = ",
    "\nQ: the special magic {n}s for {K}? A: ",
    "\nWhat did the text give as the special magic {n}s of {K}? It gave ",
    "\nLook up {K}. Their special magic {n}s are ",
    "\nFor {K}, what are the special magic {n}s? In order, they are ",
    "\nYou saw special magic {n}s for {K}. They are ",
    "\nFill in the special magic {n}s of {K}: ",
    "\nName the magic {n}s for {K}. They are ",
    "\nThe values of the special magic {n}s for {K} are ",
    "\nWrite the special magic {n} of each of {K}, in order: ",
    "\nWhat special magic {n}s were {K} given? Answer: ",
    "\nOne by one, the special magic {n}s for {K} are ",
};
static const char *const multivalue_needle[TK_NVARIANTS] = {
    "One of the special magic {n}s for {k} is: {v}.",
    "One magic {n} for {k} is {v}.",
    "For {k}, one of the special magic {n}s is {v}.",
    "A special magic {n} of {k}: {v}.",
    "Note that {k} also has the special magic {n} {v}.",
    "Among the special magic {n}s that go with {k} is {v}.",
    /* 6..11: more training wordings (session 7) */
    "Another special magic {n} for {k} is {v}.",
    "{k} has, among others, the magic {n} {v}.",
    "Here is one of the magic {n}s of {k}: {v}.",
    "Add {v} to the special magic {n}s of {k}.",
    "One more magic {n} belonging to {k} is {v}.",
    "Magic {n} for {k}, one of several: {v}.",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "{v} is one of the special magic {n}s for {k}.",
    "One special magic {n} of {k} is {v}.",
    "{k}: one special magic {n} is {v}.",
    "The special magic {n} {v} is one of those for {k}.",
    "Yet another special magic {n} for {k}: {v}.",
    "{k} gets one more special magic {n}, namely {v}.",
    "Include {v} in the list of special magic {n}s for {k}.",
    "For the key {k}, {v} is one special magic {n}.",
    "The list of special magic {n}s for {k} includes {v}.",
    "Special magic {n} (one of several) of {k} = {v}.",
    "Please memorize {v} too, a special magic {n} of {k}.",
    "{k} -> {v}, one of its special magic {n}s.",
};
static const char *const multivalue_question[TK_NVARIANTS] = {
    "\nWhat are all the special magic {n}s for {k}? The special magic {n}s for {k} are: ",
    "\nWhat are all the magic {n}s for {k}? The magic {n}s for {k} are ",
    "\nList every special magic {n} of {k}. They are ",
    "\nFind all special magic {n}s for {k}. They are ",
    "\nWhich special magic {n}s does {k} have? They are ",
    "\nRecall all special magic {n}s that go with {k}: ",
    /* 6..11: more training wordings (session 7) */
    "\nGive every magic {n} of {k}. Answer: ",
    "\nWhat magic {n}s were given for {k}? They were ",
    "\nState all the special magic {n}s of {k}: ",
    "\nRepeat each special magic {n} for {k}, in order: ",
    "\nWhich {n}s belong to {k}? All of them: ",
    "\nList the magic {n}s of {k}. Answer: ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\nThe special magic {n}s for {k}, all of them = ",
    "\nQ: every special magic {n} of {k}? A: ",
    "\nWhat did the text give as the special magic {n}s of {k}? It gave ",
    "\nLook up {k}. All its special magic {n}s are ",
    "\nFor {k}, what are all the special magic {n}s? For {k} they are ",
    "\nYou saw several special magic {n}s for {k}. They are ",
    "\nFill in all the special magic {n}s of {k}: ",
    "\nName every magic {n} for {k}. They are ",
    "\nThe values of the special magic {n}s for {k} are ",
    "\nWrite each special magic {n} of {k}, in order: ",
    "\nWhat special magic {n}s were given for {k}, all of them? Answer: ",
    "\nOne by one, the special magic {n}s of {k} are ",
};
static const char *const vartrack_first[TK_NVARIANTS] = {
    "VAR {a} = {v}.", "Let {a} be {v}.", "Set {a} to {v}.", "{a} := {v}.",
    "Assign {v} to {a}.", "The variable {a} holds {v}.",
    /* 6..11: more training wordings (session 7) */
    "{a} = {v}.",
    "Give {a} the value {v}.",
    "Put {v} into {a}.",
    "{a} starts as {v}.",
    "Store {v} in {a}.",
    "{a} is set to {v}.",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "{a} <- {v}.",
    "{v} is the value of {a}.",
    "{a} gets {v}.",
    "Value of {a}: {v}.",
    "Initialize {a} with {v}.",
    "{v} goes into {a}.",
    "Now {a} equals {v}.",
    "Make {a} equal to {v}.",
    "{a} takes the value {v}.",
    "Write {v} to {a}.",
    "Let the value of {a} be {v}.",
    "{a} becomes {v}.",
};
static const char *const vartrack_next[TK_NVARIANTS] = {
    "VAR {a} = VAR {b}.", "Let {a} be {b}.", "Set {a} to the value of {b}.", "{a} := {b}.",
    "Assign {b} to {a}.", "The variable {a} holds what {b} holds.",
    /* 6..11: more training wordings (session 7) */
    "{a} = {b}.",
    "Give {a} the value of {b}.",
    "Put the value of {b} into {a}.",
    "{a} copies {b}.",
    "Store {b} in {a}.",
    "{a} is set to {b}.",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "{a} <- {b}.",
    "The value of {b} is now also the value of {a}.",
    "{a} gets {b}.",
    "Value of {a}: that of {b}.",
    "Initialize {a} with {b}.",
    "{b} is copied into {a}.",
    "Now {a} equals {b}.",
    "Make {a} equal to {b}.",
    "{a} takes the value of {b}.",
    "Write {b} to {a}.",
    "Let the value of {a} be that of {b}.",
    "{a} becomes {b}.",
};
static const char *const vartrack_question[TK_NVARIANTS] = {
    ("\nFind all variables that are assigned the value {v} in the text above. "
     "The variables assigned the value {v} are: "),
    "\nWhich variables are equal to {v}? The variables equal to {v} are: ",
    "\nList the variables whose value is {v}. They are: ",
    "\nFind every variable with the value {v}. They are: ",
    "\nWhich variables end up holding {v}? They are: ",
    "\nName all variables that hold {v}, in order: ",
    /* 6..11: more training wordings (session 7) */
    "\nWhich variables hold the value {v}? Answer: ",
    "\nGive every variable whose value is {v}: ",
    "\nState the variables that end up as {v}. They are: ",
    "\nWhich variables were given {v}, directly or not? They are: ",
    "\nRepeat the names of the variables equal to {v}: ",
    "\nList every variable holding {v}. Answer: ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\nVariables equal to {v} = ",
    "\nQ: which variables have the value {v}? A: ",
    "\nTrace the value {v} through the assignments. The variables are: ",
    "\nWhat variables take the value {v}? Answer: ",
    "\nFollow {v} from variable to variable. Which variables have it? ",
    "\nFill in the variables whose value is {v}: ",
    "\nThe value {v} is held by which variables? By ",
    "\nList, in order, each variable set to {v}: ",
    "\nWhich variables does {v} reach? It reaches ",
    "\nFind the variables that equal {v} at the end. They are ",
    "\nWhere does {v} end up? In the variables ",
    "\nAll variables with value {v}, in order: ",
};
/* --phrasing composed: half of vartrack's items word their assignments by
 * a small grammar instead of the table above, so that a model meets many
 * more verbs, orders and lead words than 22 wordings (session 46: the
 * ruler_hsa model read 90% of the names on training wordings and 31% on
 * the held-out ones, where it took the held-out verb's capital for a
 * name's first letter).  One frame, its words, a lead and a form of the
 * copied name are drawn per item, so an item's needles share one wording
 * as the table's do.  Holes: {a} the assigned name, {x} what it copies
 * ({v} in the first assignment, a form of {b} in the later ones).  None of
 * these words occurs in the held-out wordings (variants 4 and 5: tk_self_check
 * refuses "assign", "hold" and "variable"). */
typedef struct vt_pair {
  const char *verb, *prep;
} vt_pair;
/* key first: "{verb} {x} {prep} {a}." */
static const vt_pair vt_send[] = {
    {"put", "into"},     {"copy", "into"},     {"send", "to"},     {"move", "into"},
    {"place", "in"},     {"save", "in"},       {"load", "into"},   {"pass", "to"},
    {"push", "into"},    {"feed", "into"},     {"route", "to"},    {"forward", "to"},
    {"transfer", "to"},  {"deliver", "to"},    {"hand", "to"},     {"carry", "over to"},
    {"pipe", "into"},    {"drop", "into"},     {"record", "in"},   {"write", "into"},
    {"copy", "over to"}, {"post", "to"},       {"ship", "to"},     {"give", "to"},
};
/* key first: "{x} {phrase} {a}." */
static const char *const vt_goes[] = {
    "goes into",     "flows into",    "is copied to",  "is stored in",      "moves to",
    "passes to",     "is sent to",    "is placed in",  "is saved in",       "travels to",
    "is loaded into", "is written to", "ends up in",   "is given to",       "lands in",
    "is put in",     "is kept in",    "is passed on to", "is recorded in",  "is moved into",
};
/* name first: "{noun}{a} {phrase} {x}." */
static const char *const vt_gets[] = {
    "receives",     "gets a copy of", "is loaded with", "now stores",      "mirrors",
    "equals",       "is equal to",    "inherits",       "is filled with",  "reads",
    "takes",        "keeps",          "copies",         "matches",         "is bound to",
    "stores",       "is given",       "picks up",       "is the same as",  "contains",
    "is now",       "is made equal to", "is a copy of", "duplicates",      "tracks",
    "gets",
};
static const char *const vt_nouns[] = {
    "", "the name ", "the register ", "the slot ", "the cell ", "the field ", "the label ",
    "the counter ", "the symbol ", "the box ", "the entry ",
};
/* name first: "{verb} {a} {prep} {x}." */
static const vt_pair vt_set[] = {
    {"set", "equal to"}, {"bind", "to"},      {"fill", "with"},   {"load", "with"},
    {"point", "at"},     {"update", "to"},    {"change", "to"},   {"reset", "to"},
    {"link", "to"},      {"tie", "to"},       {"initialize", "to"}, {"make", "equal to"},
    {"match", "to"},     {"overwrite", "with"}, {"replace", "with"}, {"pin", "to"},
    {"map", "to"},
};
/* symbols: "{x} {arrow} {a}." (key first) and "{a} {sign} {x}." (name first) */
static const char *const vt_arrows[] = {"->", "=>", "-->", ">>", "~>", "|>"};
static const char *const vt_signs[] = {"==", ":", "<=", "<<", "<--", "is:"};
static const char *const vt_leads[] = {
    "", "now ", "then ", "next, ", "later, ", "after that, ", "meanwhile, ", "also, ",
};
/* what a later assignment copies (symbol frames take {b} alone) */
static const char *const vt_sources[] = {
    "{b}", "the value of {b}", "the contents of {b}", "what is in {b}", "whatever {b} has",
};

/* --phrasing nonce adds four frames to these six: a made-up verb, the
 * names in either order, "{verb} {x} {prep} {a}." (key first) or
 * "{verb} {a} {prep} {x}." (name first), {x} the value or the bare copied
 * name.  Neither the verb nor the preposition tells the order (half the
 * items say "to", which the table's wordings use both ways); only the
 * chain does: the first assignment's key is a number, a later one's the
 * name assigned before (session 47: the model read held-out "Assign V to
 * X." as name first, 32%, and "Assign V into X." right, 94.5%). */
static const char *const vt_nonce_verbs[] = {
    "zorp", "blick", "frem", "dax",  "wug",  "tove", "glim", "snorf",
    "plink", "yerk", "vosh", "trabe", "mib", "kelf", "drun", "quabe",
};
static const char *const vt_nonce_preps[] = {"into", "onto", "with", "at", "by", "toward", "over"};

/* Every word list of the grammar, for tk_self_check. */
static const char *const *const vt_word_lists[] = {vt_goes,    vt_gets,    vt_nouns,
                                                   vt_arrows,  vt_signs,   vt_leads,
                                                   vt_sources, vt_nonce_verbs, vt_nonce_preps};
static const size_t vt_word_counts[] = {
    COUNT_OF(vt_goes),    COUNT_OF(vt_gets),    COUNT_OF(vt_nouns),
    COUNT_OF(vt_arrows),  COUNT_OF(vt_signs),   COUNT_OF(vt_leads),
    COUNT_OF(vt_sources), COUNT_OF(vt_nonce_verbs), COUNT_OF(vt_nonce_preps)};
static const char *const babi_move[TK_NVARIANTS] = {
    "{p} went to the {l}.", "{p} moved to the {l}.", "{p} travelled to the {l}.",
    "{p} journeyed to the {l}.", "{p} walked over to the {l}.", "{p} headed for the {l}.",
    /* 6..11: more training wordings (session 7) */
    "{p} ran to the {l}.",
    "{p} went back to the {l}.",
    "{p} made their way to the {l}.",
    "{p} entered the {l}.",
    "{p} hurried to the {l}.",
    "{p} wandered into the {l}.",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "{p} is now in the {l}.",
    "{p} stepped into the {l}.",
    "{p} left for the {l}.",
    "{p} drove to the {l}.",
    "{p} came to the {l}.",
    "{p} crossed over into the {l}.",
    "{p} moved into the {l}.",
    "{p} rushed off to the {l}.",
    "{p} arrived in the {l}.",
    "{p} relocated to the {l}.",
    "{p} strolled to the {l}.",
    "{p} went straight to the {l}.",
};
static const char *const babi_pick[TK_NVARIANTS] = {
    "{p} picked up the {o}.", "{p} grabbed the {o}.", "{p} got the {o}.", "{p} took the {o}.",
    "{p} collected the {o}.", "{p} lifted the {o} and kept it.",
    /* 6..11: more training wordings (session 7) */
    "{p} picked the {o} up.",
    "{p} took hold of the {o}.",
    "{p} fetched the {o}.",
    "{p} carried off the {o}.",
    "{p} grabbed hold of the {o}.",
    "{p} snatched the {o}.",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "{p} now has the {o}.",
    "{p} took away the {o}.",
    "{p} reached for the {o} and took it.",
    "{p} is holding the {o}.",
    "{p} seized the {o}.",
    "{p} obtained the {o}.",
    "{p} acquired the {o}.",
    "{p} gathered up the {o}.",
    "{p} received the {o}.",
    "{p} laid hands on the {o}.",
    "{p} scooped up the {o}.",
    "{p} took the {o} along.",
};
static const char *const babi_where_person[TK_NVARIANTS] = {
    "\nWhere is {p}? {p} is in the ",
    "\nWhere is {p} now? {p} is in the ",
    "\nIn which room is {p}? In the ",
    "\nWhere did {p} go last? To the ",
    "\nWhat place is {p} in at the end? The ",
    "\nTell me where {p} is. {p} is in the ",
    /* 6..11: more training wordings (session 7) */
    "\nWhere is {p} at the end? Answer: the ",
    "\nWhich room is {p} in now? The ",
    "\nState where {p} is. In the ",
    "\nWhere can {p} be found? In the ",
    "\nWhere did {p} end up? {p} ended up in the ",
    "\nGive the room {p} is in. The ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\n{p} is in which room? The ",
    "\nQ: where is {p}? A: the ",
    "\nWhere would you find {p} now? In the ",
    "\nLast known room of {p}: the ",
    "\nWhere has {p} gone? {p} is in the ",
    "\nWhich room holds {p} at the end? It is the ",
    "\nIf you look for {p}, where do you look? In the ",
    "\nThe room {p} is in now = the ",
    "\nWhere is {p} at this point? Right now, in the ",
    "\nWhat room did {p} end in? {p} ended in the ",
    "\nLocate {p}. {p} is in the ",
    "\nWhere is {p} currently? Currently in the ",
};
/* Six of the training wordings (14, 15, 19, 20, 22, 23) say "before" without
 * the word since session 37: with every training wording holding it, a model
 * read held-out wording 4, which does not, as "where is {p}" (docs/tasks.md). */
static const char *const babi_where_before[TK_NVARIANTS] = {
    "\nWhere was {p} before the {l}? Before the {l}, {p} was in the ",
    "\nWhere was {p} just before going to the {l}? In the ",
    "\nBefore moving to the {l}, where was {p}? In the ",
    "\nWhich room was {p} in before the {l}? The ",
    "\nWhat place did {p} leave to go to the {l}? The ",
    "\nTell me where {p} was right before the {l}. {p} was in the ",
    /* 6..11: more training wordings (session 7) */
    "\nWhere had {p} been before the {l}? Answer: the ",
    "\nWhich room was {p} in just before reaching the {l}? The ",
    "\nState where {p} was before the {l}. In the ",
    "\nBefore the {l}, which room was {p} in? The ",
    "\nWhere was {p} right before entering the {l}? In the ",
    "\nGive the room {p} was in before the {l}. The ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\n{p} was in which room before the {l}? The ",
    "\nQ: where was {p} before the {l}? A: the ",
    "\nWhere was {p} until the move to the {l}? Until then, in the ",
    "\nFrom which room did {p} set out for the {l}? From the ",
    "\nBefore going into the {l}, {p} was where? In the ",
    "\nWhich room held {p} before the {l}? It was the ",
    "\nWhere did {p} come from before the {l}? From the ",
    "\nWhich room did {p} come out of on the way to the {l}? The ",
    "\nWhere was {p} prior to the {l}? Prior to it, in the ",
    "\nJust before the {l}, {p} had been in the ",
    "\n{p} reached the {l} from which room? From the ",
    "\nWhere was {p} earlier, ahead of the {l}? Earlier, in the ",
};
static const char *const babi_where_object[TK_NVARIANTS] = {
    "\nWhere is the {o}? The {o} is in the ",
    "\nWhere is the {o} now? It is in the ",
    "\nIn which room is the {o}? In the ",
    "\nWhere did the {o} end up? In the ",
    "\nWhat place is the {o} in at the end? The ",
    "\nTell me where the {o} is. The {o} is in the ",
    /* 6..11: more training wordings (session 7) */
    "\nWhere is the {o} at the end? Answer: the ",
    "\nWhich room is the {o} in now? The ",
    "\nState where the {o} is. In the ",
    "\nWhere can the {o} be found? In the ",
    "\nWhere did the {o} end up? The {o} ended up in the ",
    "\nGive the room the {o} is in. The ",
    /* 12..23: more training wordings, new core shapes (after session 14) */
    "\nAnd the {o}, which room is it in? The ",
    "\nQ: where is the {o}? A: the ",
    "\nWhere would you find the {o} now? In the ",
    "\nLast known room of the {o}: the ",
    "\nWhere has the {o} gone? The {o} is in the ",
    "\nWhich room holds the {o} at the end? It is the ",
    "\nIf you look for the {o}, where do you look? In the ",
    "\nThe room the {o} is in now = the ",
    "\nWhere is the {o} at this point? Right now, in the ",
    "\nWhat room did the {o} end in? The {o} ended in the ",
    "\nLocate the {o}. The {o} is in the ",
    "\nWhere is the {o} currently? Currently in the ",
};

/* --phrasing varied: a training variant of every needle and question,
 * each needle also with a lead-in and a tail, the question with a lead-in
 * after its line break (the first entry of each: none), drawn per needle
 * from the phrasing stream: 22 x 8 x 8 forms of a needle, 22 x 8 of a
 * question, so that a model learns the task rather than the templates.
 * None holds a value word (tk_self_check), and a needle's are whole
 * sentences without " the " (a babi fact's sentence is the one with it). */
static const char *const needle_leads[] = {
    "", "Note this. ", "Here is a fact. ", "Important. ", "Listen carefully. ", "One more thing. ",
    "Attention, please. ", "Read this twice. ",
};
static const char *const needle_tails[] = {
    "", " That is all.", " It matters.", " Keep that in mind.", " This will come up again.",
    " Back to reading.", " Now read on.", " Mark it well.",
};
static const char *const question_leads[] = {
    "", "Question. ", "Now answer this. ", "Think back. ", "Time for the quiz. ",
    "Here is the question. ", "Answer from memory. ", "Quiz time. ",
};

/* The headers; the other fixed texts are the phrasings above. */
static const char passkey_header[] =
    "There is a passkey hidden inside a lot of irrelevant text. Find it and memorize it. "
    "I will quiz you about it afterwards.\n";
static const char niah_header[] =
    "Some special magic %ss are hidden within the following text. Make sure to memorize "
    "them. I will quiz you about them afterwards.\n";
static const char vartrack_header[] =
    "Memorize and track the chains of variable assignments hidden in the following text.\n";
static const char babi_header[] =
    "A short story about people moving between rooms and carrying things is hidden in the "
    "following text. Follow it. I will ask about it afterwards.\n";

/* Every fixed text with its %s holes removed, for tk_self_check. */
static const char *const templates[] = {
    passkey_header, niah_header, vartrack_header, babi_header, "number", "word", "uuid", "code",
};

/* Every phrasing table, for tk_self_check. */
static const char *const *const phrasing_tables[] = {
    passkey_needle, passkey_question, key_needle, multikey_question, multiquery_question,
    multivalue_needle, multivalue_question, vartrack_first, vartrack_next, vartrack_question,
    babi_move, babi_pick, babi_where_person, babi_where_object, babi_where_before,
};

static const char *const task_names[TK_NTASKS] = {"passkey", "multikey", "multivalue",
                                                  "multiquery", "vartrack", "babi"};
static const char *const filler_names[TK_NFILLERS] = {"synthetic", "noise", "fortunes", "sayings",
                                                      "devil", "jargon"};
static const char *const phrasing_names[TK_NPHRASINGS] = {"default", "train", "heldout",
                                                          "varied", "composed", "nonce"};
static const char *const needle_names[TK_NNEEDLES] = {"number", "word", "uuid", "code"};

const char *tk_task_name(tk_task t) {
  return (unsigned)t < TK_NTASKS ? task_names[t] : "?";
}

const char *tk_needle_name(tk_needle n) {
  return (unsigned)n < TK_NNEEDLES ? needle_names[n] : "?";
}

const char *tk_kind_name(tk_kind k) {
  static const char *const names[TK_NKINDS] = {"", "now", "object", "before"};
  return (unsigned)k < TK_NKINDS ? names[k] : "?";
}

/* The index of s in names[0..n), or -1. */
static int name_index(const char *const *names, int n, const char *s) {
  for (int i = 0; s && i < n; i++)
    if (!strcmp(s, names[i])) return i;
  return -1;
}

int tk_task_parse(const char *s) { return name_index(task_names, TK_NTASKS, s); }
int tk_needle_parse(const char *s) { return name_index(needle_names, TK_NNEEDLES, s); }

const char *tk_filler_name(tk_filler f) {
  return (unsigned)f < TK_NFILLERS ? filler_names[f] : "?";
}

int tk_filler_parse(const char *s) { return name_index(filler_names, TK_NFILLERS, s); }

/* A prose style is one the corpus table (cli/corpus.c) has a source for. */
bool tk_filler_is_prose(tk_filler f) { return tk_corpus_source_named(tk_filler_name(f)) != NULL; }

bool tk_filler_held_out(tk_filler f) { return f >= TK_FIRST_HELD_OUT_FILLER && f < TK_NFILLERS; }

const char *tk_phrasing_name(tk_phrasing p) {
  return (unsigned)p < TK_NPHRASINGS ? phrasing_names[p] : "?";
}

int tk_phrasing_parse(const char *s) { return name_index(phrasing_names, TK_NPHRASINGS, s); }

static char ascii_lower(char ch) { return ch >= 'A' && ch <= 'Z' ? (char)(ch - 'A' + 'a') : ch; }

/* Whether the n bytes at s contain w, ignoring ASCII case. */
static bool contains_word(const char *s, size_t n, const char *w) {
  size_t k = strlen(w);
  for (size_t i = 0; k && i + k <= n; i++) {
    size_t j = 0;
    while (j < k && ascii_lower(s[i + j]) == ascii_lower(w[j])) j++;
    if (j == k) return true;
  }
  return false;
}

bool tk_reserved_text(const char *s, size_t n) {
  static const char *const extra[] = {"passkey", "magic"};
  const char *const *lists[] = {value_words, babi_places, babi_objects, babi_people, extra};
  size_t sizes[] = {COUNT_OF(value_words), COUNT_OF(babi_places), COUNT_OF(babi_objects),
                    COUNT_OF(babi_people), COUNT_OF(extra)};
  for (size_t l = 0; l < COUNT_OF(lists); l++)
    for (size_t j = 0; j < sizes[l]; j++)
      if (contains_word(s, n, lists[l][j])) return true;
  return false;
}

void tk_options_init(tk_options *o, tk_task task) {
  memset(o, 0, sizeof *o);
  o->task = task;
  o->needle = TK_NUMBER;
}

/* ---- random numbers: splitmix64 --------------------------------------------- */

typedef struct rng {
  uint64_t s;
} rng;

static uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

static uint64_t rng_next(rng *r) {
  r->s += 0x9E3779B97F4A7C15ULL;
  return mix64(r->s);
}

/* Uniform in [0, n) up to a bias below 2^-40 for the n used here. */
static uint64_t rng_below(rng *r, uint64_t n) { return rng_next(r) % n; }

/* Depths are fixed-point fractions of the filler: 0 .. DEPTH_ONE.  No
 * floating point touches an item (a fused multiply-add or another rounding
 * would change the bytes from one compiler or machine to another); only
 * the caller's depth option is converted, exactly, by a power of two. */
#define DEPTH_ONE ((uint64_t)1 << 32)

/* A probability as a threshold out of 1024: true with probability p/1024. */
static bool rng_chance(rng *r, uint64_t p) { return rng_below(r, 1024) < p; }

/* ---- growable strings ------------------------------------------------------- */

typedef struct sbuf {
  char *p;
  size_t n, cap;
  bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 64;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = true;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  if (n) memcpy(b->p + b->n, s, n);
  b->n += n;
  b->p[b->n] = 0;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }
static void sb_putc(sbuf *b, char c) { sb_put(b, &c, 1); }

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...) {
  char small[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    b->oom = true;
    return;
  }
  if ((size_t)n < sizeof small) {
    sb_put(b, small, (size_t)n);
    return;
  }
  char *big = malloc((size_t)n + 1);
  if (!big) {
    b->oom = true;
    return;
  }
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  sb_put(b, big, (size_t)n);
  free(big);
}

/* ---- the content of an item --------------------------------------------------- */

typedef struct unit {
  sbuf text;
  uint64_t depth; /* fraction of the filler, 0..DEPTH_ONE */
  bool support;   /* the answer depends on it (tk_item.support) */
} unit;

typedef struct content {
  sbuf header, question;
  sbuf asked; /* vartrack: the asked value (tk_item.value); else empty */
  unit *needles; /* in prompt order (depths nondecreasing) */
  int nneedles;
  sbuf *answers;
  int nanswers;
  int variant; /* the question's */
  int needle_variant; /* the needles' (-1 for babi: each fact draws its own;
                          -1 for composed's grammar wordings) */
  int lead_variant; /* babi under the training phrasings: the answer lead's; else -1 */
  tk_kind kind; /* the question's kind (babi) */
  bool oom;
} content;

static void content_free(content *c) {
  free(c->header.p);
  free(c->question.p);
  free(c->asked.p);
  for (int i = 0; i < c->nneedles; i++) free(c->needles[i].text.p);
  free(c->needles);
  for (int i = 0; i < c->nanswers; i++) free(c->answers[i].p);
  free(c->answers);
  memset(c, 0, sizeof *c);
}

static bool content_oom(content *c) {
  bool oom = c->oom || c->header.oom || c->question.oom || c->asked.oom;
  for (int i = 0; i < c->nneedles; i++) oom |= c->needles[i].text.oom;
  for (int i = 0; i < c->nanswers; i++) oom |= c->answers[i].oom;
  return oom;
}

/* Whether s is one of the n strings in prev. */
static bool in_list(const sbuf *prev, int n, const char *s) {
  for (int i = 0; i < n; i++)
    if (!strcmp(prev[i].p, s)) return true;
  return false;
}

/* A value of the given kind into out (emptied first), distinct from the
 * n values in prev. */
static void gen_value(rng *r, tk_needle kind, sbuf *out, const sbuf *prev, int n) {
  static const char hex[] = "0123456789abcdef";
  for (;;) {
    out->n = 0;
    if (kind == TK_NUMBER) {
      sb_printf(out, "%07llu", (unsigned long long)(1000000 + rng_below(r, 9000000)));
    } else if (kind == TK_WORD) {
      sb_puts(out, value_words[rng_below(r, COUNT_OF(value_words))]);
    } else if (kind == TK_CODE) {
      for (int i = 0; i < 8; i++) sb_putc(out, (char)('a' + rng_below(r, 26)));
    } else {
      for (int i = 0; i < 32; i++) {
        if (i == 8 || i == 12 || i == 16 || i == 20) sb_putc(out, '-');
        char c = hex[rng_below(r, 16)];
        if (i == 12) c = '4';                       /* version 4 */
        if (i == 16) c = "89ab"[rng_below(r, 4)];   /* RFC 4122 variant */
        sb_putc(out, c);
      }
    }
    if (out->oom) return;
    if (!in_list(prev, n, out->p)) return;
  }
}

/* An "adjective-noun" key distinct from the n keys in prev. */
static void gen_key(rng *r, sbuf *out, const sbuf *prev, int n) {
  for (;;) {
    out->n = 0;
    /* two statements: the order of a call's arguments is unspecified */
    const char *adjective = key_adjectives[rng_below(r, COUNT_OF(key_adjectives))];
    const char *noun = key_nouns[rng_below(r, COUNT_OF(key_nouns))];
    sb_printf(out, "%s-%s", adjective, noun);
    if (out->oom) return;
    if (!in_list(prev, n, out->p)) return;
  }
}

/* Five uppercase letters, not starting with "VAR" (the filler templates'
 * placeholder), distinct from the n names in prev. */
static void gen_var(rng *r, sbuf *out, const sbuf *prev, int n) {
  for (;;) {
    out->n = 0;
    for (int i = 0; i < 5; i++) sb_putc(out, (char)('A' + rng_below(r, 26)));
    if (out->oom) return;
    if (strncmp(out->p, "VAR", 3) && !in_list(prev, n, out->p)) return;
  }
}

static void shuffle(rng *r, int *a, int n) {
  for (int i = n - 1; i > 0; i--) {
    int j = (int)rng_below(r, (uint64_t)i + 1);
    int t = a[i];
    a[i] = a[j];
    a[j] = t;
  }
}

/* n depths, one uniform in each of n equal strata of [0, DEPTH_ONE): sorted. */
static void stratified(rng *r, uint64_t *d, int n) {
  for (int i = 0; i < n; i++)
    d[i] = ((uint64_t)i * DEPTH_ONE + rng_below(r, DEPTH_ONE)) / (uint64_t)n;
}

typedef struct resolved {
  tk_task task;
  tk_needle needle;
  int count, chains;
  bool fixed_depth;
  uint64_t depth; /* when fixed_depth */
  tk_filler filler;
  tk_phrasing phrasing;
  const tk_corpus *corpus;
} resolved;

static bool fail(char *err, size_t errsize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool fail(char *err, size_t errsize, const char *fmt, ...) {
  if (err && errsize) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errsize, fmt, ap);
    va_end(ap);
  }
  return false;
}

static bool resolve(const tk_options *o, resolved *v, char *err, size_t errsize) {
  if (!o) return fail(err, errsize, "no options");
  if ((unsigned)o->task >= TK_NTASKS) return fail(err, errsize, "unknown task %d", (int)o->task);
  if ((unsigned)o->needle >= TK_NNEEDLES)
    return fail(err, errsize, "unknown needle kind %d", (int)o->needle);
  v->task = o->task;
  v->needle = o->task == TK_BABI ? TK_NUMBER : o->needle; /* babi has no values: one stream */
  v->count = o->count;
  v->chains = o->chains;
  if ((unsigned)o->filler >= TK_NFILLERS)
    return fail(err, errsize, "unknown filler style %d", (int)o->filler);
  if ((unsigned)o->phrasing >= TK_NPHRASINGS)
    return fail(err, errsize, "unknown phrasing %d", (int)o->phrasing);
  v->filler = o->filler;
  v->phrasing = o->phrasing;
  v->corpus = tk_filler_is_prose(o->filler) ? o->corpus : NULL;
  if (tk_filler_is_prose(o->filler) && (!o->corpus || o->corpus->count == 0))
    return fail(err, errsize, "the '%s' filler needs its corpus loaded (tk_corpus_load)",
                filler_names[o->filler]);
  if (v->task == TK_PASSKEY) {
    if (v->count != 0 && v->count != 1)
      return fail(err, errsize, "passkey has exactly one needle (count 1), not %d", v->count);
    v->count = 1;
  } else if (v->task == TK_BABI) {
    if (v->count == 0) v->count = 6;
    if (v->count < 2 || v->count > TK_MAX_COUNT)
      return fail(err, errsize, "babi: count (moves in the story) must be 2..%d, not %d",
                  TK_MAX_COUNT, v->count);
  } else {
    if (v->count == 0) v->count = v->task == TK_VARTRACK ? 5 : 4;
    if (v->count < 1 || v->count > TK_MAX_COUNT)
      return fail(err, errsize, "count must be 1..%d, not %d", TK_MAX_COUNT, v->count);
  }
  if (v->task == TK_VARTRACK) {
    if (v->chains == 0) v->chains = 2;
    if (v->chains < 1 || v->chains > TK_MAX_CHAINS)
      return fail(err, errsize, "chains must be 1..%d, not %d", TK_MAX_CHAINS, v->chains);
  } else if (v->chains != 0) {
    return fail(err, errsize, "chains applies to vartrack only");
  }
  v->fixed_depth = o->has_depth;
  v->depth = 0;
  if (o->has_depth) {
    double d = o->depth;
    if (!(d >= 0 && d <= 1)) return fail(err, errsize, "depth must be 0..1");
    if (v->task != TK_PASSKEY && v->task != TK_MULTIKEY)
      return fail(err, errsize,
                  "depth applies to passkey and multikey only (%s spreads its needles)",
                  task_names[v->task]);
    v->depth = (uint64_t)(d * (double)DEPTH_ONE); /* exact: a power of two */
  }
  return true;
}

static rng stream(const resolved *v, uint64_t seed, uint64_t which) {
  uint64_t h = mix64(seed ^ 0x6873616374736b73ULL); /* "hsactsks" */
  h = mix64(h ^ ((uint64_t)v->task << 40) ^ ((uint64_t)v->needle << 32));
  h = mix64(h ^ ((uint64_t)(unsigned)v->count << 16) ^ (uint64_t)(unsigned)v->chains);
  return (rng){mix64(h ^ which)};
}

/* Sorts needles by depth; ties keep their order (insertion sort). */
static void sort_needles(unit *u, int n) {
  for (int i = 1; i < n; i++) {
    unit x = u[i];
    int j = i;
    while (j > 0 && u[j - 1].depth > x.depth) {
      u[j] = u[j - 1];
      j--;
    }
    u[j] = x;
  }
}

/* "a", "a and b", "a, b and c". */
static void join_and(sbuf *out, const sbuf *s, int n) {
  for (int i = 0; i < n; i++) {
    if (i) sb_puts(out, i == n - 1 ? " and " : ", ");
    sb_put(out, s[i].p, s[i].n);
  }
}

/* The holes of a phrasing (see the tables). */
typedef struct holes {
  const char *n, *k, *v, *a, *b, *p, *l, *o;
  const sbuf *keys; /* {K}: every key, joined by join_and */
  int nkeys;
} holes;

static void put_phrase(sbuf *out, const char *t, const holes *h) {
  for (; *t; t++) {
    if (t[0] == '{' && t[1] && t[2] == '}') {
      const char *s = NULL;
      switch (t[1]) {
      case 'n': s = h->n; break;
      case 'k': s = h->k; break;
      case 'v': s = h->v; break;
      case 'a': s = h->a; break;
      case 'b': s = h->b; break;
      case 'p': s = h->p; break;
      case 'l': s = h->l; break;
      case 'o': s = h->o; break;
      case 'K': join_and(out, h->keys, h->nkeys); t += 2; continue;
      default: break;
      }
      if (s) {
        sb_puts(out, s);
        t += 2;
        continue;
      }
    }
    sb_putc(out, *t);
  }
}

/* The phrasings that draw among the training variants (and draw the
 * needles', the question's and babi's answer lead's apart). */
static bool training_phrasing(tk_phrasing p) {
  return p == TK_PHRASING_TRAIN || p == TK_PHRASING_VARIED || p == TK_PHRASING_COMPOSED ||
         p == TK_PHRASING_NONCE;
}

/* A variant of the phrasing tables: 0 by default, else drawn from the
 * phrasing stream (a stream of its own, so that the default phrasing's
 * items keep their bytes and every phrasing asks the same question). */
static int variant(rng *r, tk_phrasing p) {
  if (training_phrasing(p)) {
    int k = (int)rng_below(r, TK_NVARIANTS - TK_HELDOUT_VARIANTS);
    return k < TK_FIRST_HELDOUT_VARIANT ? k : k + TK_HELDOUT_VARIANTS;
  }
  if (p == TK_PHRASING_HELDOUT)
    return TK_FIRST_HELDOUT_VARIANT + (int)rng_below(r, TK_HELDOUT_VARIANTS);
  return 0;
}

/* A needle's text (template t): under --phrasing varied with a lead-in
 * and a tail from the phrasing stream. */
static void put_needle(sbuf *out, const char *t, const holes *h, rng *pr, tk_phrasing p) {
  if (p == TK_PHRASING_VARIED) sb_puts(out, needle_leads[rng_below(pr, COUNT_OF(needle_leads))]);
  put_phrase(out, t, h);
  if (p == TK_PHRASING_VARIED) sb_puts(out, needle_tails[rng_below(pr, COUNT_OF(needle_tails))]);
}

/* The question (template t, "\n..."): under --phrasing varied with a
 * lead-in after the line break. */
static void put_question(sbuf *out, const char *t, const holes *h, rng *pr, tk_phrasing p) {
  if (p == TK_PHRASING_VARIED && t[0] == '\n') {
    sb_putc(out, '\n');
    sb_puts(out, question_leads[rng_below(pr, COUNT_OF(question_leads))]);
    t++;
  }
  put_phrase(out, t, h);
}

/* --phrasing composed and nonce: a grammar wording of vartrack's
 * assignments (the tables' holes: {a}, {v}, {b}) into first and next,
 * drawn from the phrasing stream; nonce also draws the made-up verb frames
 * (6..9; composed's stream is the same as before they were added). */
static void compose_vartrack(rng *pr, bool nonce, sbuf *first, sbuf *next) {
  int frame = (int)rng_below(pr, nonce ? 10 : 6);
  const char *lead = vt_leads[rng_below(pr, COUNT_OF(vt_leads))];
  const char *src = vt_sources[rng_below(pr, COUNT_OF(vt_sources))];
  const vt_pair *send = &vt_send[rng_below(pr, COUNT_OF(vt_send))];
  const vt_pair *set = &vt_set[rng_below(pr, COUNT_OF(vt_set))];
  const char *goes = vt_goes[rng_below(pr, COUNT_OF(vt_goes))];
  const char *gets = vt_gets[rng_below(pr, COUNT_OF(vt_gets))];
  const char *noun = vt_nouns[rng_below(pr, COUNT_OF(vt_nouns))];
  const char *arrow = vt_arrows[rng_below(pr, COUNT_OF(vt_arrows))];
  const char *sign = vt_signs[rng_below(pr, COUNT_OF(vt_signs))];
  const char *made_up = "", *prep = "";
  if (nonce) {
    made_up = vt_nonce_verbs[rng_below(pr, COUNT_OF(vt_nonce_verbs))];
    prep = rng_chance(pr, 512) ? "to" : vt_nonce_preps[rng_below(pr, COUNT_OF(vt_nonce_preps))];
  }
  for (int k = 0; k < 2; k++) {
    sbuf *o = k ? next : first;
    const char *x = !k ? "{v}" : frame == 2 || frame == 5 || frame >= 6 ? "{b}" : src;
    size_t at = o->n;
    sb_puts(o, lead);
    switch (frame) {
    case 0: sb_printf(o, "%s %s %s {a}.", send->verb, x, send->prep); break;
    case 1: sb_printf(o, "%s %s {a}.", x, goes); break;
    case 2: sb_printf(o, "%s %s {a}.", x, arrow); break;
    case 3: sb_printf(o, "%s{a} %s %s.", noun, gets, x); break;
    case 4: sb_printf(o, "%s {a} %s %s.", set->verb, set->prep, x); break;
    case 5: sb_printf(o, "{a} %s %s.", sign, x); break;
    default: /* 6, 8 key first; 7, 9 name first */
      if (frame % 2 == 0) sb_printf(o, "%s %s %s {a}.", made_up, x, prep);
      else sb_printf(o, "%s {a} %s %s.", made_up, prep, x);
      break;
    }
    if (!o->oom && o->p[at] >= 'a' && o->p[at] <= 'z') o->p[at] = (char)(o->p[at] - 'a' + 'A');
  }
}

/* Where a question template's answer lead starts: after its last "? " or
 * ". " (a sentence's end); 0 when it has none (the template is all lead,
 * like "\nJust before the {l}, {p} had been in the "). */
static size_t lead_at(const char *t) {
  size_t at = 0;
  for (size_t i = 1; t[i]; i++)
    if (t[i] == ' ' && (t[i - 1] == '?' || t[i - 1] == '.')) at = i + 1;
  return at;
}

/* For babi's "before" question: the index of the move of person[j] just
 * before move j, when there is one and place[j] is a place that person
 * goes to only once (so "before the PLACE" names one move); else -1. */
static int move_before(const int *person, const int *place, int nm, int j) {
  for (int i = 0; i < nm; i++)
    if (i != j && person[i] == person[j] && place[i] == place[j]) return -1;
  int jp = j - 1;
  while (jp >= 0 && person[jp] != person[j]) jp--;
  return jp;
}

/* The story of a babi item: `count` moves of BABI_PEOPLE_IN_STORY people
 * in time order; with kind 1 also two pick-ups (the asked object by the
 * asked person, another object by someone else).  The facts are the
 * needles, in time order at increasing depths.  The question, by kind:
 * 0 where a person is (their last move); 1 where an object is (who picked
 * it up, then that one's last move); 2 where a person was before a place
 * they went to once (the move there and the move before it). */
static void build_babi(const resolved *v, rng *r, rng *pr, content *c, uint64_t *d) {
  enum { NP = BABI_PEOPLE_IN_STORY };
  int who[COUNT_OF(babi_people)];
  for (int i = 0; i < (int)COUNT_OF(babi_people); i++) who[i] = i;
  shuffle(r, who, (int)COUNT_OF(babi_people));
  int nm = v->count;
  int cur[NP];
  for (int i = 0; i < NP; i++) cur[i] = -1;
  int *person = malloc((size_t)nm * sizeof *person), *place = malloc((size_t)nm * sizeof *place);
  if (!person || !place) {
    c->oom = true;
    free(person);
    free(place);
    return;
  }
  for (int i = 0; i < nm; i++) {
    int p = (int)rng_below(r, NP);
    int l = (int)rng_below(r, COUNT_OF(babi_places));
    while (l == cur[p]) l = (int)rng_below(r, COUNT_OF(babi_places));
    person[i] = p;
    place[i] = l;
    cur[p] = l;
  }
  int kind = (int)rng_below(r, 3);
  int asked = person[rng_below(r, (uint64_t)nm)]; /* someone who moved */
  int last = nm - 1;
  while (person[last] != asked) last--;
  /* kind 2: a move j to a place its person visits once, after an earlier
   * move of theirs (the previous one: the answer); none: kind 0 */
  int before = -1, target = -1;
  if (kind == 2) {
    int ncand = 0;
    for (int j = 0; j < nm; j++) ncand += move_before(person, place, nm, j) >= 0;
    if (ncand) {
      int pick = (int)rng_below(r, (uint64_t)ncand);
      for (int j = 0; j < nm && target < 0; j++) {
        int jp = move_before(person, place, nm, j);
        if (jp >= 0 && pick-- == 0) target = j, before = jp;
      }
      asked = person[target];
    } else {
      kind = 0;
    }
  }
  /* kind 1: the pick-ups happen before move pos (pos == nm: after all) */
  int obj = (int)rng_below(r, COUNT_OF(babi_objects));
  int obj2 = (int)rng_below(r, COUNT_OF(babi_objects) - 1);
  if (obj2 >= obj) obj2++;
  int other = (asked + 1 + (int)rng_below(r, NP - 1)) % NP;
  int pos = (int)rng_below(r, (uint64_t)nm + 1), pos2 = (int)rng_below(r, (uint64_t)nm + 1);
  int nn = nm + (kind == 1 ? 2 : 0);
  c->nneedles = nn;
  stratified(r, d, nn);
  sb_puts(&c->header, babi_header);
  int s = 0;
  for (int i = 0; i <= nm; i++) {
    if (kind == 1) {
      for (int k = 0; k < 2; k++) {
        if ((k ? pos2 : pos) != i) continue;
        holes h = {.p = babi_people[who[k ? other : asked]],
                   .o = babi_objects[k ? obj2 : obj]};
        put_needle(&c->needles[s].text, babi_pick[variant(pr, v->phrasing)], &h, pr, v->phrasing);
        c->needles[s].support = k == 0;
        c->needles[s].depth = d[s];
        s++;
      }
    }
    if (i == nm) break;
    holes h = {.p = babi_people[who[person[i]]], .l = babi_places[place[i]]};
    put_needle(&c->needles[s].text, babi_move[variant(pr, v->phrasing)], &h, pr, v->phrasing);
    c->needles[s].support = kind == 2 ? i == target || i == before : i == last;
    c->needles[s].depth = d[s];
    s++;
  }
  holes q = {.p = babi_people[who[asked]], .o = babi_objects[obj],
             .l = target >= 0 ? babi_places[place[target]] : NULL};
  c->variant = variant(pr, v->phrasing);
  c->kind = kind == 2 ? TK_KIND_BEFORE : kind == 1 ? TK_KIND_OBJECT : TK_KIND_NOW;
  const char *const *questions = kind == 2   ? babi_where_before
                                 : kind == 1 ? babi_where_object
                                             : babi_where_person;
  const char *qt = questions[c->variant];
  sbuf mixed = {0};
  if (training_phrasing(v->phrasing)) {
    /* the question sentence of one training wording, the answer lead of
     * another drawn apart (docs/tasks.md); a wording without both parts
     * stays whole */
    c->lead_variant = variant(pr, v->phrasing);
    const char *lt = questions[c->lead_variant];
    size_t qn = lead_at(qt), ln = lead_at(lt);
    if (qn && ln) {
      sb_put(&mixed, qt, qn);
      sb_puts(&mixed, lt + ln);
      c->oom = mixed.oom;
      qt = mixed.p;
    } else {
      c->lead_variant = c->variant;
    }
  }
  if (!c->oom) put_question(&c->question, qt, &q, pr, v->phrasing);
  free(mixed.p);
  sb_puts(&c->answers[0], babi_places[kind == 2 ? place[before] : cur[asked]]);
  free(person);
  free(place);
}

static bool build_content(const resolved *v, uint64_t seed, content *c) {
  memset(c, 0, sizeof *c);
  rng r = stream(v, seed, 1);
  rng pr = stream(v, seed, 3); /* the phrasing's draws */
  const char *noun = needle_names[v->needle];
  /* needles; distinct keys; distinct values; variable names */
  int nn = v->task == TK_VARTRACK ? v->count * v->chains
           : v->task == TK_BABI   ? v->count + 2 /* at most: kind 1 adds two */
                                  : v->count;
  int nkeys = v->task == TK_MULTIVALUE ? 1 : v->task >= TK_VARTRACK ? 0 : v->count;
  int nvals = v->task == TK_VARTRACK ? v->chains : v->task == TK_BABI ? 0 : v->count;
  int nnames = v->task == TK_VARTRACK ? nn : 0;
  int nans = v->task == TK_PASSKEY || v->task == TK_MULTIKEY || v->task == TK_BABI ? 1
                                                                                  : v->count;
  c->needles = calloc((size_t)nn, sizeof *c->needles);
  c->answers = calloc((size_t)nans, sizeof *c->answers);
  sbuf *keys = calloc((size_t)nkeys + 1, sizeof *keys);
  sbuf *vals = calloc((size_t)nvals + 1, sizeof *vals);
  sbuf *names = calloc((size_t)nnames + 1, sizeof *names);
  uint64_t *d = malloc((size_t)nn * sizeof *d);
  int *perm = malloc((size_t)nn * sizeof *perm);
  if (!c->needles || !c->answers || !keys || !vals || !names || !d || !perm) {
    c->oom = true;
    goto done;
  }
  c->nneedles = nn;
  c->nanswers = nans;
  for (int i = 0; i < nn; i++) perm[i] = i;
  /* Draw every key, name and value first (gen_* compare with the earlier
   * ones, so stop at the first failure). */
  for (int i = 0; i < nkeys && !c->oom; i++) {
    gen_key(&r, &keys[i], keys, i);
    c->oom = keys[i].oom;
  }
  for (int i = 0; i < nnames && !c->oom; i++) {
    gen_var(&r, &names[i], names, i);
    c->oom = names[i].oom;
  }
  for (int i = 0; i < nvals && !c->oom; i++) {
    gen_value(&r, v->needle, &vals[i], vals, i);
    c->oom = vals[i].oom;
  }
  if (c->oom) goto done;

  /* t words the needles, q the question.  Under the training phrasings q
   * is drawn on its own: tied to the needles' wording, the questions of
   * the variants whose needles put the value before the key (which
   * train.py --key-first drops) were never trained, and held-out
   * questions like them failed (docs/tasks.md).  Held-out and default
   * items keep the one variant, and their bytes. */
  bool babi = v->task == TK_BABI, training = training_phrasing(v->phrasing);
  int t = babi ? 0 : variant(&pr, v->phrasing);
  int q = !babi && training ? variant(&pr, v->phrasing) : t;
  c->variant = q;
  c->needle_variant = babi ? -1 : t;
  c->lead_variant = -1; /* build_babi draws one under the training phrasings */
  switch (v->task) {
  case TK_PASSKEY: {
    d[0] = rng_below(&r, DEPTH_ONE + 1);
    if (v->fixed_depth) d[0] = v->depth;
    sb_puts(&c->header, passkey_header);
    holes h = {.v = vals[0].p};
    put_needle(&c->needles[0].text, passkey_needle[t], &h, &pr, v->phrasing);
    c->needles[0].depth = d[0];
    c->needles[0].support = true;
    put_question(&c->question, passkey_question[q], &h, &pr, v->phrasing);
    sb_puts(&c->answers[0], vals[0].p);
    break;
  }
  case TK_MULTIKEY:
  case TK_MULTIQUERY: {
    stratified(&r, d, nn);
    shuffle(&r, perm, nn); /* key i lies at depth d[perm[i]] */
    int target = (int)rng_below(&r, (uint64_t)nn);
    sb_printf(&c->header, niah_header, noun);
    for (int i = 0; i < nn; i++) {
      holes h = {.n = noun, .k = keys[i].p, .v = vals[i].p};
      put_needle(&c->needles[i].text, key_needle[t], &h, &pr, v->phrasing);
      c->needles[i].depth = d[perm[i]];
      c->needles[i].support = v->task == TK_MULTIQUERY || i == target;
    }
    if (v->task == TK_MULTIKEY) {
      if (v->fixed_depth) c->needles[target].depth = v->depth;
      holes h = {.n = noun, .k = keys[target].p};
      put_question(&c->question, multikey_question[q], &h, &pr, v->phrasing);
      sb_puts(&c->answers[0], vals[target].p);
    } else {
      holes h = {.n = noun, .keys = keys, .nkeys = nn};
      put_question(&c->question, multiquery_question[q], &h, &pr, v->phrasing);
      for (int i = 0; i < nn; i++) sb_puts(&c->answers[i], vals[i].p);
    }
    break;
  }
  case TK_MULTIVALUE: {
    stratified(&r, d, nn); /* value i at depth d[i]: answers in prompt order */
    sb_printf(&c->header, niah_header, noun);
    for (int i = 0; i < nn; i++) {
      holes h = {.n = noun, .k = keys[0].p, .v = vals[i].p};
      put_needle(&c->needles[i].text, multivalue_needle[t], &h, &pr, v->phrasing);
      c->needles[i].depth = d[i];
      c->needles[i].support = true;
      sb_puts(&c->answers[i], vals[i].p);
    }
    holes h = {.n = noun, .k = keys[0].p};
    put_question(&c->question, multivalue_question[q], &h, &pr, v->phrasing);
    break;
  }
  case TK_VARTRACK: {
    /* Chain k has the names k*nv .. k*nv + nv - 1 and the value vals[k];
     * chain 0 is asked.  Its statements keep their order: the s-th slot
     * takes the next statement of chain perm[s]. */
    int nv = v->count;
    stratified(&r, d, nn);
    for (int i = 0; i < nn; i++) perm[i] = i / nv;
    shuffle(&r, perm, nn);
    int next[TK_MAX_CHAINS] = {0};
    const char *first = vartrack_first[t], *later = vartrack_next[t];
    sbuf cf = {0}, cn = {0}; /* composed, nonce: half the items' grammar wording */
    bool grammar = v->phrasing == TK_PHRASING_COMPOSED || v->phrasing == TK_PHRASING_NONCE;
    if (grammar && rng_chance(&pr, 512)) {
      compose_vartrack(&pr, v->phrasing == TK_PHRASING_NONCE, &cf, &cn);
      if (cf.oom || cn.oom) {
        free(cf.p);
        free(cn.p);
        c->oom = true;
        goto done;
      }
      first = cf.p;
      later = cn.p;
      c->needle_variant = -1;
    }
    for (int s = 0; s < nn; s++) {
      int k = perm[s], j = next[k]++;
      holes h = {.a = names[k * nv + j].p, .v = vals[k].p,
                 .b = j ? names[k * nv + j - 1].p : NULL};
      put_needle(&c->needles[s].text, j == 0 ? first : later, &h, &pr, v->phrasing);
      c->needles[s].depth = d[s];
      c->needles[s].support = k == 0;
    }
    free(cf.p);
    free(cn.p);
    sb_puts(&c->header, vartrack_header);
    holes h = {.v = vals[0].p};
    put_question(&c->question, vartrack_question[q], &h, &pr, v->phrasing);
    sb_puts(&c->asked, vals[0].p);
    for (int j = 0; j < nv; j++) sb_puts(&c->answers[j], names[j].p);
    break;
  }
  case TK_BABI:
    build_babi(v, &r, &pr, c, d);
    nn = c->nneedles;
    break;
  default:
    break;
  }
  sort_needles(c->needles, nn);

done:
  for (int i = 0; keys && i < nkeys; i++) free(keys[i].p);
  for (int i = 0; vals && i < nvals; i++) free(vals[i].p);
  for (int i = 0; names && i < nnames; i++) free(names[i].p);
  free(keys);
  free(vals);
  free(names);
  free(d);
  free(perm);
  if (content_oom(c)) {
    content_free(c);
    return false;
  }
  return true;
}

/* H + Q + N: the bytes of the header, the question, and the needles with
 * one separator each. */
static size_t fixed_bytes(const content *c) {
  size_t n = c->header.n + c->question.n;
  for (int i = 0; i < c->nneedles; i++) n += c->needles[i].text.n + 1;
  return n;
}

/* The least length: the fixed bytes and one filler unit of 3 bytes (a
 * 2-byte sentence and its separator), less the first unit's separator. */
static size_t least_length(const content *c) { return fixed_bytes(c) + 2; }

/* ---- filler ----------------------------------------------------------------- */

enum { MAX_POOL = 6 };

typedef struct filler {
  tk_filler style;
  const tk_corpus *corpus; /* prose styles */
  size_t next;             /* prose: the next sentence; noise: the next fixed one */
  rng r;
  uint64_t p_fixed, p_fresh; /* out of 1024 */
  uint64_t par;              /* a paragraph break once in par separators */
  int fixed[COUNT_OF(fixed_sentences)];
  int nfixed;
  sbuf pool[MAX_POOL];
  int npool;
} filler;

static const char *random_word(rng *r) {
  return filler_words[rng_below(r, COUNT_OF(filler_words))];
}

/* A random filler word of exactly n letters (1 <= n <= 9). */
static const char *word_of_length(rng *r, size_t n) {
  uint64_t k = 0;
  for (size_t i = 0; i < COUNT_OF(filler_words); i++) k += strlen(filler_words[i]) == n;
  uint64_t pick = rng_below(r, k ? k : 1);
  for (size_t i = 0; i < COUNT_OF(filler_words); i++)
    if (strlen(filler_words[i]) == n && pick-- == 0) return filler_words[i];
  return "a"; /* unreachable: the list covers 1..9 */
}

static void capitalize_from(sbuf *b, size_t start) {
  if (!b->oom && start < b->n && b->p[start] >= 'a' && b->p[start] <= 'z')
    b->p[start] = (char)(b->p[start] - 'a' + 'A');
}

/* 4..12 random words, the first capitalized, and a period. */
static void random_sentence(rng *r, sbuf *out) {
  size_t start = out->n;
  int n = 4 + (int)rng_below(r, 9);
  for (int i = 0; i < n; i++) {
    if (i) sb_putc(out, ' ');
    sb_puts(out, random_word(r));
  }
  sb_putc(out, '.');
  capitalize_from(out, start);
}

/* A random-word sentence of exactly n >= 2 bytes. */
static void exact_sentence(rng *r, sbuf *out, size_t n) {
  size_t start = out->n, m = n - 1; /* bytes before the period */
  while (m >= 12) {
    const char *w = random_word(r); /* at most 9 letters: m stays >= 2 */
    sb_puts(out, w);
    sb_putc(out, ' ');
    m -= strlen(w) + 1;
  }
  if (m <= 9) {
    sb_puts(out, word_of_length(r, m));
  } else { /* 10 or 11: two words */
    sb_puts(out, word_of_length(r, 5));
    sb_putc(out, ' ');
    sb_puts(out, word_of_length(r, m - 6));
  }
  sb_putc(out, '.');
  capitalize_from(out, start);
}

static bool filler_init(filler *f, const resolved *v, uint64_t seed) {
  memset(f, 0, sizeof *f);
  f->r = stream(v, seed, 2);
  f->p_fixed = 150 + rng_below(&f->r, 725); /* 15% .. 85% fixed sentences */
  f->p_fresh = rng_below(&f->r, 310);        /* 0 .. 30% of the rest fresh */
  f->par = 4 + rng_below(&f->r, 12);
  int all = (int)COUNT_OF(fixed_sentences);
  int idx[COUNT_OF(fixed_sentences)];
  for (int i = 0; i < all; i++) idx[i] = i;
  shuffle(&f->r, idx, all);
  f->nfixed = 3 + (int)rng_below(&f->r, (uint64_t)all - 2);
  memcpy(f->fixed, idx, sizeof f->fixed);
  f->npool = 1 + (int)rng_below(&f->r, MAX_POOL);
  bool oom = false;
  for (int i = 0; i < f->npool; i++) {
    random_sentence(&f->r, &f->pool[i]);
    oom |= f->pool[i].oom;
  }
  /* The synthetic style's draws above happen for every style, so that the
   * filler stream is the same up to here. */
  f->style = v->filler;
  f->corpus = v->corpus;
  if (f->corpus) f->next = rng_below(&f->r, f->corpus->count); /* where the reading starts */
  return !oom;
}

static void filler_free(filler *f) {
  for (int i = 0; i < MAX_POOL; i++) free(f->pool[i].p);
}

/* The next filler sentence, as the style draws it, into out (emptied). */
static void filler_next(filler *f, sbuf *out) {
  out->n = 0;
  if (f->style == TK_FILLER_NOISE) { /* the first five fixed sentences, in order */
    sb_puts(out, fixed_sentences[f->next]);
    f->next = (f->next + 1) % 5;
    return;
  }
  if (f->corpus) { /* prose: consecutive sentences, from the start drawn */
    sb_put(out, f->corpus->text + f->corpus->offsets[f->next], f->corpus->lengths[f->next]);
    f->next = (f->next + 1) % f->corpus->count;
    return;
  }
  if (rng_chance(&f->r, f->p_fixed)) {
    sb_puts(out, fixed_sentences[f->fixed[rng_below(&f->r, (uint64_t)f->nfixed)]]);
  } else if (rng_chance(&f->r, f->p_fresh)) {
    random_sentence(&f->r, out);
  } else {
    const sbuf *s = &f->pool[rng_below(&f->r, (uint64_t)f->npool)];
    sb_put(out, s->p, s->n);
  }
}

/* ---- items ------------------------------------------------------------------ */

void tk_item_free(tk_item *it) {
  if (!it) return;
  free(it->prompt);
  free(it->answer);
  free(it->value);
  for (int i = 0; i < it->n_answers; i++) free(it->answers ? it->answers[i] : NULL);
  free(it->answers);
  free(it->needle_offsets);
  free(it->needle_lengths);
  free(it->support);
  memset(it, 0, sizeof *it);
}

tk_status tk_min_length(const tk_options *o, uint64_t seed, size_t *min_length, char *err,
                        size_t errsize) {
  resolved v;
  if (!resolve(o, &v, err, errsize)) return TK_EINVAL;
  content c;
  if (!build_content(&v, seed, &c)) {
    fail(err, errsize, "out of memory");
    return TK_ENOMEM;
  }
  *min_length = least_length(&c);
  content_free(&c);
  return TK_OK;
}

typedef struct emitter {
  sbuf *out;
  filler *f;
  bool first;
} emitter;

/* Whether a filler unit of u bytes may take from the r left: all of them,
 * or leaving at least 3 (the least unit that can still be built). */
static bool unit_fits(size_t u, size_t r) { return u == r || (u < r && r - u >= 3); }

static void emit(emitter *e, const sbuf *s, size_t *offset) {
  if (!e->first) {
    bool br = rng_below(&e->f->r, e->f->par) == 0;
    sb_putc(e->out, br && e->f->style != TK_FILLER_NOISE ? '\n' : ' ');
  }
  e->first = false;
  if (offset) *offset = e->out->n;
  sb_put(e->out, s->p, s->n);
}

tk_status tk_generate(const tk_options *o, size_t length, uint64_t seed, tk_item *it,
                      char *err, size_t errsize) {
  if (!it) {
    fail(err, errsize, "no item");
    return TK_EINVAL;
  }
  memset(it, 0, sizeof *it);
  resolved v;
  if (!resolve(o, &v, err, errsize)) return TK_EINVAL;
  if (length > TK_MAX_LENGTH) {
    fail(err, errsize, "length %zu is more than %zu", length, TK_MAX_LENGTH);
    return TK_EINVAL;
  }
  content c;
  if (!build_content(&v, seed, &c)) {
    fail(err, errsize, "out of memory");
    return TK_ENOMEM;
  }
  size_t least = least_length(&c);
  if (length < least) {
    fail(err, errsize,
         "length %zu is too short for %s (seed %llu): it needs at least %zu bytes", length,
         task_names[v.task], (unsigned long long)seed, least);
    content_free(&c);
    return TK_ETOOSHORT;
  }
  size_t F = length + 1 - fixed_bytes(&c); /* >= 3 */
  size_t *t = malloc((size_t)c.nneedles * sizeof *t);
  it->needle_offsets = malloc((size_t)c.nneedles * sizeof *it->needle_offsets);
  it->needle_lengths = malloc((size_t)c.nneedles * sizeof *it->needle_lengths);
  it->support = malloc((size_t)c.nneedles * sizeof *it->support);
  it->answers = calloc((size_t)c.nanswers, sizeof *it->answers);
  sbuf out = {.p = malloc(length + 1), .cap = length + 1};
  sbuf cand = {0}, ans = {0};
  filler f;
  bool ok = filler_init(&f, &v, seed) && t && it->needle_offsets && it->needle_lengths &&
            it->support && it->answers && out.p;
  if (ok) {
    out.p[0] = 0;
    it->n_answers = c.nanswers;
    it->n_needles = c.nneedles;
    it->variant = c.variant;
    it->needle_variant = c.needle_variant;
    it->lead_variant = c.lead_variant;
    it->kind = c.kind;
    for (int i = 0; i < c.nneedles; i++) {
      it->needle_lengths[i] = c.needles[i].text.n;
      if (c.needles[i].support) it->support[it->n_support++] = i;
      /* F < 2^31 and depth <= 2^32: the product fits */
      t[i] = (size_t)(((uint64_t)F * c.needles[i].depth) >> 32);
    }
    sb_put(&out, c.header.p, c.header.n);
    emitter e = {&out, &f, true};
    int ni = 0;
    size_t r = F;
    while (r > 0 && !out.oom && !cand.oom) {
      size_t off = F - r;
      while (ni < c.nneedles && t[ni] <= off) {
        emit(&e, &c.needles[ni].text, &it->needle_offsets[ni]);
        ni++;
      }
      filler_next(&f, &cand);
      size_t u = cand.n + 1;
      /* prose: a sentence that does not fit is passed over for the next
       * that does (a few tries), so that little of the end is random words */
      for (int tries = 0; f.corpus && tries < 64 && !unit_fits(u, r); tries++) {
        filler_next(&f, &cand);
        u = cand.n + 1;
      }
      if (!unit_fits(u, r)) {
        cand.n = 0;
        exact_sentence(&f.r, &cand, r - 1);
        u = r;
      }
      emit(&e, &cand, NULL);
      r -= u;
    }
    for (; ni < c.nneedles; ni++) emit(&e, &c.needles[ni].text, &it->needle_offsets[ni]);
    sb_put(&out, c.question.p, c.question.n);
    for (int i = 0; i < c.nanswers; i++) {
      if (i) sb_puts(&ans, ", ");
      sb_put(&ans, c.answers[i].p, c.answers[i].n);
      it->answers[i] = strdup(c.answers[i].p);
      ok &= it->answers[i] != NULL;
    }
    if (c.asked.n) {
      it->value = strdup(c.asked.p);
      ok &= it->value != NULL;
    }
    ok &= !out.oom && !cand.oom && !ans.oom && ans.p;
  }
  filler_free(&f);
  free(cand.p);
  free(t);
  content_free(&c);
  if (!ok) {
    free(out.p);
    free(ans.p);
    tk_item_free(it);
    fail(err, errsize, "out of memory");
    return TK_ENOMEM;
  }
  if (out.n != length) { /* the layout's arithmetic is wrong: never expected */
    free(out.p);
    free(ans.p);
    tk_item_free(it);
    fail(err, errsize, "internal error: built %zu bytes, not %zu", out.n, length);
    return TK_EINVAL;
  }
  it->prompt = out.p;
  it->prompt_len = out.n;
  it->answer = ans.p;
  return TK_OK;
}

/* The first value word, babi place or word of vartrack's held-out
 * wordings that occurs in e (ignoring case), or NULL. */
static const char *clash_in(const char *e) {
  static const char *const held_words[] = {"assign", "hold", "variable"};
  const char *const *lists[] = {value_words, babi_places, held_words};
  size_t sizes[] = {COUNT_OF(value_words), COUNT_OF(babi_places), COUNT_OF(held_words)};
  for (size_t l = 0; l < COUNT_OF(lists); l++)
    for (size_t j = 0; j < sizes[l]; j++)
      if (contains_word(e, strlen(e), lists[l][j])) return lists[l][j];
  return NULL;
}

/* The first such clash in any word of --phrasing composed's grammar, its
 * entry into *at; NULL when there is none. */
static const char *grammar_clash(const char **at) {
  const char *w = NULL;
  for (size_t l = 0; l < COUNT_OF(vt_word_lists); l++)
    for (size_t j = 0; j < vt_word_counts[l]; j++)
      if ((w = clash_in(*at = vt_word_lists[l][j]))) return w;
  const vt_pair *const pairs[] = {vt_send, vt_set};
  size_t npairs[] = {COUNT_OF(vt_send), COUNT_OF(vt_set)};
  for (size_t l = 0; l < COUNT_OF(pairs); l++)
    for (size_t j = 0; j < npairs[l]; j++)
      if ((w = clash_in(*at = pairs[l][j].verb)) || (w = clash_in(*at = pairs[l][j].prep)))
        return w;
  return NULL;
}

int tk_self_check(char *err, size_t errsize) {
  for (size_t n = 1; n <= 9; n++) {
    bool found = false;
    for (size_t i = 0; i < COUNT_OF(filler_words); i++) found |= strlen(filler_words[i]) == n;
    if (!found) return fail(err, errsize, "no filler word of %zu letters", n), 1;
  }
  if (COUNT_OF(value_words) < TK_MAX_COUNT)
    return fail(err, errsize, "fewer value words than TK_MAX_COUNT"), 1;
  /* Every text the generator writes, word lists and phrasings alike. */
  const char *const *lists[11 + COUNT_OF(phrasing_tables)] = {
      filler_words, fixed_sentences, key_adjectives, key_nouns,    templates,     value_words,
      babi_people,  babi_objects,    needle_leads,   needle_tails, question_leads};
  size_t sizes[11 + COUNT_OF(phrasing_tables)] = {
      COUNT_OF(filler_words), COUNT_OF(fixed_sentences), COUNT_OF(key_adjectives),
      COUNT_OF(key_nouns),    COUNT_OF(templates),       COUNT_OF(value_words),
      COUNT_OF(babi_people),  COUNT_OF(babi_objects),    COUNT_OF(needle_leads),
      COUNT_OF(needle_tails), COUNT_OF(question_leads)};
  for (size_t t = 0; t < COUNT_OF(phrasing_tables); t++) {
    lists[11 + t] = phrasing_tables[t];
    sizes[11 + t] = TK_NVARIANTS;
  }
  /* No value word, and no babi place (babi's answers), occurs inside any
   * of them, ignoring case. */
  for (size_t k = 0; k < COUNT_OF(value_words) + COUNT_OF(babi_places); k++) {
    const char *w = k < COUNT_OF(value_words) ? value_words[k]
                                              : babi_places[k - COUNT_OF(value_words)];
    for (size_t l = 0; l < COUNT_OF(lists); l++)
      for (size_t j = 0; j < sizes[l]; j++)
        if (lists[l][j] != w && contains_word(lists[l][j], strlen(lists[l][j]), w))
          return fail(err, errsize, "'%s' occurs in '%s'", w, lists[l][j]), 1;
    for (size_t j = 0; j < COUNT_OF(babi_places); j++)
      if (babi_places[j] != w && contains_word(babi_places[j], strlen(babi_places[j]), w))
        return fail(err, errsize, "'%s' occurs in '%s'", w, babi_places[j]), 1;
  }
  /* --phrasing composed's grammar: no value word or babi place either, and
   * none of the words of vartrack's held-out wordings (variants 4 and 5),
   * which evaluation keeps unseen. */
  const char *at = NULL, *clash = grammar_clash(&at);
  if (clash) return fail(err, errsize, "'%s' occurs in the grammar's '%s'", clash, at), 1;
  /* Prose filler drops sentences holding a reserved word: the phrasings
   * themselves hold some ("passkey", "magic"), but never a value word. */
  for (size_t t = 0; t < COUNT_OF(phrasing_tables); t++)
    for (int j = 0; j < TK_NVARIANTS; j++) {
      if (!phrasing_tables[t][j] || !*phrasing_tables[t][j])
        return fail(err, errsize, "phrasing table %zu has no variant %d", t, j), 1;
      /* a held-out wording is never also a training one */
      for (int k = 0; k < TK_NVARIANTS; k++)
        if (k != j && !tk_training_variant(j) && tk_training_variant(k) &&
            phrasing_tables[t][k] && !strcmp(phrasing_tables[t][j], phrasing_tables[t][k]))
          return fail(err, errsize, "phrasing table %zu: held-out variant %d is also variant %d",
                      t, j, k), 1;
    }
  return 0;
}

/* ---- the command ------------------------------------------------------------ */

enum {
  G_TASK = 1, G_LENGTH, G_SEED, G_NEEDLE, G_COUNT, G_CHAINS, G_DEPTH, G_ITEMS, G_FORMAT,
  G_FILLER, G_PHRASING, G_CORPUS_DIR
};

static const cli_opt gen_task_opts[] = {
    {G_TASK, "--task", NULL, "TASK", "passkey, multikey, multivalue, multiquery, vartrack or\n"
                                     "babi"},
    {G_LENGTH, "--length", NULL, "BYTES", "the prompt's size: 4096, 16K, 1M (binary multiples)"},
    {G_SEED, "--seed", NULL, "N", "the first item's seed (default 0); item i has seed N+i"},
    {G_NEEDLE, "--needle", NULL, "number|word|uuid|code", "the kind of the values (default number)"},
    {G_COUNT, "--count", NULL, "K", "multikey, multiquery: keys; multivalue: values (default\n"
                                    "4); vartrack: variables per chain (default 5); babi:\n"
                                    "moves in the story (default 6)"},
    {G_CHAINS, "--chains", NULL, "C", "vartrack: chains, one asked (default 2)"},
    {G_DEPTH, "--depth", NULL, "D", "passkey, multikey: the asked needle's depth, 0..1\n"
                                    "(default: chosen by the seed)"},
    {G_ITEMS, "--items", NULL, "M", "items to print (default 1)"},
    {G_FILLER, "--filler", NULL, "STYLE",
     "the haystack: synthetic (default), noise, fortunes, sayings\n"
     "(training styles); devil, jargon (held out); prose styles\n"
     "read Debian's packages fortunes-min, fortunes, dict-devil,\n"
     "dict-jargon"},
    {G_PHRASING, "--phrasing", NULL, "default|train|heldout|varied|composed|nonce",
     "the needles' and question's wording: the original\n"
     "(default), one of 22 training wordings, or one of two\n"
     "held-out wordings; varied: a training wording with\n"
     "lead-in and tail sentences; composed: a training\n"
     "wording, or for half of vartrack's items one from a\n"
     "grammar of many verbs and orders; nonce: composed's,\n"
     "its grammar also with made-up verbs in either order"},
    {G_CORPUS_DIR, "--corpus-dir", NULL, "DIR",
     "read a prose style's files from DIR instead of where\n"
     "its package installs them"},
    {G_FORMAT, "--format", NULL, "text|jsonl|prompt",
     "text: each item's prompt, a newline and the answer line,\n"
     "items separated by an empty line; jsonl: one JSON object\n"
     "per item; prompt: the prompt's bytes only (one item)"},
    {0, NULL, NULL, NULL, NULL},
};

const cli_command tk_gen_task_command = {
    .name = "gen-task",
    .synopsis = "--task TASK --length BYTES [options]",
    .summary = "print deterministic synthetic long-context items (docs/tasks.md): a prompt\n"
               "of exactly BYTES bytes that ends where the expected answer begins",
    .groups = {gen_task_opts, NULL},
    .max_operands = 0,
};

#define gt_usage_error(...) cli_usage_error(&tk_gen_task_command, __VA_ARGS__)

static bool parse_u64(const char *s, uint64_t lo, uint64_t hi, uint64_t *out) {
  if (!s || *s < '0' || *s > '9') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10);
  if (errno || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/* "4096", "16K", "1M", "1G" (binary multiples). */
static bool parse_length(const char *s, size_t *out) {
  if (!s || *s < '0' || *s > '9') return false;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(s, &end, 10), mul = 1;
  if (*end == 'K' || *end == 'k') mul = 1ULL << 10, end++;
  else if (*end == 'M' || *end == 'm') mul = 1ULL << 20, end++;
  else if (*end == 'G' || *end == 'g') mul = 1ULL << 30, end++;
  if (errno || *end || v < 1 || v > TK_MAX_LENGTH / mul) return false;
  *out = (size_t)(v * mul);
  return true;
}

static char *item_json(const tk_options *o, const tk_item *it, uint64_t seed, size_t length) {
  cJSON *j = cJSON_CreateObject();
  char num[32];
  bool ok = j != NULL;
  ok = ok && cJSON_AddStringToObject(j, "task", tk_task_name(o->task));
  if (o->task != TK_BABI) ok = ok && cJSON_AddStringToObject(j, "needle", tk_needle_name(o->needle));
  ok = ok && cJSON_AddStringToObject(j, "filler", tk_filler_name(o->filler));
  ok = ok && cJSON_AddStringToObject(j, "phrasing", tk_phrasing_name(o->phrasing));
  ok = ok && cJSON_AddNumberToObject(j, "variant", it->variant);
  if (it->needle_variant >= 0)
    ok = ok && cJSON_AddNumberToObject(j, "needle_variant", it->needle_variant);
  if (it->lead_variant >= 0)
    ok = ok && cJSON_AddNumberToObject(j, "lead_variant", it->lead_variant);
  if (it->kind != TK_KIND_NONE) ok = ok && cJSON_AddStringToObject(j, "kind", tk_kind_name(it->kind));
  snprintf(num, sizeof num, "%llu", (unsigned long long)seed);
  ok = ok && cJSON_AddRawToObject(j, "seed", num);
  snprintf(num, sizeof num, "%zu", length);
  ok = ok && cJSON_AddRawToObject(j, "length", num);
  resolved v;
  ok = ok && resolve(o, &v, NULL, 0);
  if (ok && o->task != TK_PASSKEY) ok = cJSON_AddNumberToObject(j, "count", v.count);
  if (ok && o->task == TK_VARTRACK) ok = cJSON_AddNumberToObject(j, "chains", v.chains);
  ok = ok && cJSON_AddStringToObject(j, "prompt", it->prompt);
  ok = ok && cJSON_AddStringToObject(j, "answer", it->answer);
  if (it->value) ok = ok && cJSON_AddStringToObject(j, "value", it->value);
  if (ok && (o->task == TK_MULTIVALUE || o->task == TK_MULTIQUERY || o->task == TK_VARTRACK)) {
    cJSON *a = cJSON_AddArrayToObject(j, "answers");
    ok = a != NULL;
    for (int i = 0; ok && i < it->n_answers; i++) {
      cJSON *s = cJSON_CreateString(it->answers[i]);
      ok = s && cJSON_AddItemToArray(a, s);
      if (!ok) cJSON_Delete(s);
    }
  }
  cJSON *offs = ok ? cJSON_AddArrayToObject(j, "needle_offsets") : NULL;
  cJSON *lens = offs ? cJSON_AddArrayToObject(j, "needle_lengths") : NULL;
  cJSON *sup = lens ? cJSON_AddArrayToObject(j, "support") : NULL;
  ok = ok && offs && lens && sup;
  for (int i = 0; ok && i < it->n_needles; i++) {
    cJSON *n = cJSON_CreateNumber((double)it->needle_offsets[i]);
    ok = n && cJSON_AddItemToArray(offs, n);
    if (!ok) {
      cJSON_Delete(n);
      break;
    }
    n = cJSON_CreateNumber((double)it->needle_lengths[i]);
    ok = n && cJSON_AddItemToArray(lens, n);
    if (!ok) cJSON_Delete(n);
  }
  for (int i = 0; ok && i < it->n_support; i++) {
    cJSON *n = cJSON_CreateNumber(it->support[i]);
    ok = n && cJSON_AddItemToArray(sup, n);
    if (!ok) cJSON_Delete(n);
  }
  char *text = ok ? cJSON_PrintUnformatted(j) : NULL;
  cJSON_Delete(j);
  return text;
}

int tk_gen_task_parse(int argc, char **argv, tk_gen_args *g) {
  memset(g, 0, sizeof *g);
  tk_options_init(&g->o, TK_PASSKEY);
  g->items = 1;
  g->format = TK_FORMAT_TEXT;
  tk_options o = g->o;
  bool have_task = false, have_length = false, have_needle = false;
  const char *corpus_dir = NULL;
  size_t length = 0;
  uint64_t seed = 0, items = 1, n;
  tk_format format = TK_FORMAT_TEXT;
  cli_args args;
  /* every command's tables, so that another command's option is named as
   * such */
  cli_args_init(&args, &tk_gen_task_command, hsac_commands, argc, argv);
  const char *val;
  int id;
  while ((id = cli_next(&args, &val)) != CLI_END) {
    switch (id) {
    case CLI_ERROR: return 2;
    case CLI_HELP: cli_print_help(&tk_gen_task_command, stdout); return 0;
    case CLI_OPERAND: return gt_usage_error("gen-task takes options only, not '%s'", val);
    case G_TASK: {
      int t = tk_task_parse(val);
      if (t < 0)
        return gt_usage_error(
            "--task expects passkey, multikey, multivalue, multiquery, vartrack or babi, not '%s'",
            val);
      o.task = (tk_task)t;
      have_task = true;
      break;
    }
    case G_NEEDLE: {
      int k = tk_needle_parse(val);
      if (k < 0) return gt_usage_error("--needle expects number, word, uuid or code, not '%s'", val);
      o.needle = (tk_needle)k;
      have_needle = true;
      break;
    }
    case G_FILLER: {
      int f = tk_filler_parse(val);
      if (f < 0)
        return gt_usage_error(
            "--filler expects synthetic, noise, fortunes, sayings, devil or jargon, not '%s'", val);
      o.filler = (tk_filler)f;
      break;
    }
    case G_PHRASING: {
      int p = tk_phrasing_parse(val);
      if (p < 0)
        return gt_usage_error(
            "--phrasing expects default, train, heldout, varied, composed or nonce, not '%s'", val);
      o.phrasing = (tk_phrasing)p;
      break;
    }
    case G_CORPUS_DIR:
      if (!*val) return gt_usage_error("%s", "--corpus-dir expects a directory");
      corpus_dir = val;
      break;
    case G_LENGTH:
      if (!parse_length(val, &length))
        return gt_usage_error("--length expects a size from 1 to %zu such as 4096 or 16K, not '%s'",
                              TK_MAX_LENGTH, val);
      have_length = true;
      break;
    case G_SEED:
      if (!parse_u64(val, 0, INT64_MAX, &seed))
        return gt_usage_error("--seed expects a non-negative integer, not '%s'", val);
      break;
    case G_COUNT:
      if (!parse_u64(val, 1, TK_MAX_COUNT, &n))
        return gt_usage_error("--count expects 1..%d, not '%s'", TK_MAX_COUNT, val);
      o.count = (int)n;
      break;
    case G_CHAINS:
      if (!parse_u64(val, 1, TK_MAX_CHAINS, &n))
        return gt_usage_error("--chains expects 1..%d, not '%s'", TK_MAX_CHAINS, val);
      o.chains = (int)n;
      break;
    case G_DEPTH: {
      char *end;
      errno = 0;
      double d = strtod(val, &end);
      if (errno || end == val || *end || !(d >= 0 && d <= 1))
        return gt_usage_error("--depth expects a number from 0 to 1, not '%s'", val);
      o.depth = d;
      o.has_depth = true;
      break;
    }
    case G_ITEMS:
      if (!parse_u64(val, 1, 1000000, &items))
        return gt_usage_error("--items expects 1..1000000, not '%s'", val);
      break;
    case G_FORMAT:
      if (!strcmp(val, "text")) format = TK_FORMAT_TEXT;
      else if (!strcmp(val, "jsonl")) format = TK_FORMAT_JSONL;
      else if (!strcmp(val, "prompt")) format = TK_FORMAT_PROMPT;
      else return gt_usage_error("--format expects text, jsonl or prompt, not '%s'", val);
      break;
    default: return cli_unhandled(&args);
    }
  }
  if (!have_task)
    return gt_usage_error("%s",
                          "no task: --task passkey|multikey|multivalue|multiquery|vartrack|babi");
  if (o.task == TK_BABI && have_needle)
    return gt_usage_error("%s", "--needle does not apply to babi (its answers are places)");
  if (corpus_dir && !tk_filler_is_prose(o.filler))
    return gt_usage_error("--corpus-dir applies to the prose fillers (fortunes, sayings, devil, "
                          "jargon), not to '%s'", tk_filler_name(o.filler));
  if (!have_length) return gt_usage_error("%s", "no length: --length BYTES");
  if (format == TK_FORMAT_PROMPT && items != 1)
    return gt_usage_error("%s", "--format prompt prints one item (--items 1)");
  if (seed > (uint64_t)INT64_MAX - (items - 1))
    return gt_usage_error("%s", "--seed plus --items passes 2^63 - 1");
  g->o = o;
  g->length = length;
  g->seed = seed;
  g->items = items;
  g->format = format;
  g->corpus_dir = corpus_dir;
  return -1;
}

static int gen_items(const tk_gen_args *g);

int tk_cmd_gen_task(int argc, char **argv) {
  tk_gen_args g;
  int rc = tk_gen_task_parse(argc, argv, &g);
  if (rc >= 0) return rc;
  tk_corpus corpus = {0};
  char err[512];
  if (tk_filler_is_prose(g.o.filler)) {
    if (!tk_corpus_load(tk_corpus_source_named(tk_filler_name(g.o.filler)), g.corpus_dir,
                        &corpus, err, sizeof err)) {
      fprintf(stderr, "hsac: error: %s\n", err);
      return 1;
    }
    g.o.corpus = &corpus;
  }
  rc = gen_items(&g);
  tk_corpus_free(&corpus);
  return rc;
}

static int gen_items(const tk_gen_args *gp) {
  const tk_gen_args g = *gp;
  const tk_options o = g.o;
  size_t length = g.length;
  uint64_t seed = g.seed, items = g.items;
  tk_format format = g.format;
  /* Check every item first, so that a usage error prints nothing. */
  char err[256];
  for (uint64_t k = 0; k < items; k++) {
    size_t least;
    tk_status st = tk_min_length(&o, seed + k, &least, err, sizeof err);
    if (st == TK_ENOMEM) {
      fputs("hsac: error: out of memory\n", stderr);
      return 3;
    }
    if (st != TK_OK) return gt_usage_error("%s", err);
    if (length < least)
      return gt_usage_error(
          "--length %zu is too short for %s with seed %llu: it needs at least %zu", length,
          task_names[o.task], (unsigned long long)(seed + k), least);
  }
  for (uint64_t k = 0; k < items; k++) {
    tk_item it;
    tk_status st = tk_generate(&o, length, seed + k, &it, err, sizeof err);
    if (st == TK_ENOMEM) {
      fputs("hsac: error: out of memory\n", stderr);
      return 3;
    }
    if (st != TK_OK) return gt_usage_error("%s", err);
    if (format == TK_FORMAT_PROMPT) {
      fwrite(it.prompt, 1, it.prompt_len, stdout);
    } else if (format == TK_FORMAT_TEXT) {
      if (k) fputc('\n', stdout);
      fwrite(it.prompt, 1, it.prompt_len, stdout);
      printf("\n%s\n", it.answer);
    } else {
      char *line = item_json(&o, &it, seed + k, length);
      if (!line) {
        tk_item_free(&it);
        fputs("hsac: error: out of memory\n", stderr);
        return 3;
      }
      fputs(line, stdout);
      fputc('\n', stdout);
      free(line);
    }
    tk_item_free(&it);
    if (ferror(stdout)) break;
  }
  if (fflush(stdout) != 0 || ferror(stdout)) {
    fprintf(stderr, "hsac: error: cannot write the output: %s\n", strerror(errno));
    return 1;
  }
  return 0;
}
