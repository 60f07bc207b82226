-- Why a question was asked, in words (a BSN that matches someone else, candidates within the margin, ...):
-- HR sees it with the question instead of only 'unmatched' or 'disputed'.
ALTER TABLE pending_decisions ADD COLUMN reason text;
